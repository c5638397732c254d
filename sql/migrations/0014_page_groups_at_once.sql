-- Issue 11/12: a page of users read each user's teams with user_groups_json, one call
-- and one per-value plan each: 3.4 of the 4.6 ms PostgreSQL spent on a page of 50
-- users (0.07 ms a call), so an org listing its users took most of the database's
-- time from the other orgs under load. A page's teams are now read by one call,
-- planned once for the page's values (for the same reason as user_groups_json: a plan
-- kept from when the members table was empty would read the org's members for every
-- user).

-- The teams of each of p_users that is in at least one, as {"<user id>": [{"value":
-- id, "display": name}, ...]} in the teams' creation order (as user_groups_json).
CREATE OR REPLACE FUNCTION users_groups_json(p_org uuid, p_users uuid[]) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    IF cardinality(p_users) = 0 THEN
        RETURN '{}'::jsonb;
    END IF;
    RETURN (
        SELECT coalesce(jsonb_object_agg(t.user_id, t.groups), '{}'::jsonb)
        FROM (
            SELECT m.user_id,
                   jsonb_agg(jsonb_build_object('value', g.id, 'display', g.display_name)
                             ORDER BY g.seq) AS groups
            FROM scim_group_members m
            JOIN scim_groups g ON g.org_id = m.org_id AND g.id = m.group_id
            WHERE m.org_id = p_org AND m.user_id = ANY(p_users)
            GROUP BY m.user_id
        ) AS t
    );
END
$$;

-- Issue 12: two SQL-language functions ran on every request and were parsed and
-- planned again on every call. A SQL function that cannot be inlined into its
-- caller (these hold an aggregate) keeps its plan only while one statement runs;
-- the log row's three counter updates and every read of a user are each a statement
-- of their own. Measured under Okta-shaped load (track_functions): user_groups_json
-- 0.21 ms a call, jsonb_counts_add 0.056 ms a call, three calls per log row. In
-- PL/pgSQL a function's statements are parsed once per connection.

-- A user's teams as [{"value": id, "display": name}], in the teams' creation order.
-- Still planned for its values on every call: a plan kept from when the members
-- table was empty (a new install's first sync pushes teams after the users, before
-- any ANALYZE) would read the whole table for every user.
CREATE OR REPLACE FUNCTION user_groups_json(p_org uuid, p_user uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_agg(jsonb_build_object('value', g.id, 'display', g.display_name)
                   ORDER BY g.seq), '[]'::jsonb)
        FROM scim_group_members m
        JOIN scim_groups g ON g.org_id = m.org_id AND g.id = m.group_id
        WHERE m.org_id = p_org AND m.user_id = p_user
    );
END
$$;

-- counts with 1 added to each key of keys (a missing key counts from 0). Reads no
-- table: its plan holds for any values.
CREATE OR REPLACE FUNCTION jsonb_counts_add(counts jsonb, keys text[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
BEGIN
    FOREACH k IN ARRAY keys LOOP
        counts := jsonb_set(counts, ARRAY[k], to_jsonb(coalesce((counts->>k)::int, 0) + 1));
    END LOOP;
    RETURN counts;
END
$$;

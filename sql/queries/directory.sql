-- name: directory_search_users
-- The dashboard's Users page: userNames starting with $2 (a LIKE prefix pattern of
-- folded text), plus exact email ($5) and externalId ($6) matches, in userName
-- order after the cursor $3, at most $4. Each branch is an index range scan
-- (scim_users_user_name_c, scim_users_emails, scim_users_external_id).
WITH page AS (
    (SELECT org_id, id, user_name_ci COLLATE "C" AS sort_key
     FROM scim_users
     WHERE org_id = $1 AND (user_name_ci COLLATE "C") LIKE $2 AND (user_name_ci COLLATE "C") > $3
     ORDER BY (user_name_ci COLLATE "C")
     LIMIT $4)
    UNION
    (SELECT org_id, id, user_name_ci COLLATE "C"
     FROM scim_users
     WHERE $5::text IS NOT NULL AND emails_ci @> ARRAY[$5::text] AND org_id = $1
       AND (user_name_ci COLLATE "C") > $3
     LIMIT $4)
    UNION
    (SELECT org_id, id, user_name_ci COLLATE "C"
     FROM scim_users
     WHERE $6::text IS NOT NULL AND org_id = $1 AND external_id = $6
       AND (user_name_ci COLLATE "C") > $3
     LIMIT $4)
    ORDER BY sort_key
    LIMIT $4
)
SELECT u.id, u.user_name, u.display_name, u.active, u.external_id, u.created_at, u.updated_at,
       p.sort_key,
       (SELECT e->>'value' FROM jsonb_array_elements(coalesce(u.attrs->'emails', '[]')) AS e
         ORDER BY coalesce(e->>'primary', 'false') = 'true' DESC LIMIT 1) AS email,
       (SELECT coalesce(array_agg(g.display_name ORDER BY g.display_name_ci), '{}')
          FROM scim_group_members m
          JOIN scim_groups g ON g.org_id = m.org_id AND g.id = m.group_id
         WHERE m.org_id = u.org_id AND m.user_id = u.id) AS teams
FROM page p
JOIN scim_users u ON u.org_id = p.org_id AND u.id = p.id
ORDER BY p.sort_key;

-- name: directory_resource_count
-- Users or teams in the org, from the counter the triggers keep.
SELECT coalesce((SELECT sum(total) FROM scim_resource_counts WHERE org_id = $1 AND resource = $2), 0)::bigint;

-- name: directory_user
SELECT u.id, u.user_name, u.display_name, u.active, u.external_id, u.created_at, u.updated_at,
       u.attrs,
       (SELECT e->>'value' FROM jsonb_array_elements(coalesce(u.attrs->'emails', '[]')) AS e
         ORDER BY coalesce(e->>'primary', 'false') = 'true' DESC LIMIT 1) AS email
FROM scim_users u
WHERE u.org_id = $1 AND u.id = $2;

-- name: directory_user_teams
SELECT g.id, g.display_name
FROM scim_group_members m
JOIN scim_groups g ON g.org_id = m.org_id AND g.id = m.group_id
WHERE m.org_id = $1 AND m.user_id = $2
ORDER BY g.display_name_ci
LIMIT $3;

-- name: directory_search_teams
-- Teams whose name starts with $2 (LIKE prefix of folded text), by name after $3.
SELECT g.id, g.display_name, g.external_id, g.created_at, g.updated_at,
       g.display_name_ci COLLATE "C" AS sort_key,
       (SELECT count(*) FROM scim_group_members m
         WHERE m.org_id = g.org_id AND m.group_id = g.id) AS member_count
FROM scim_groups g
WHERE g.org_id = $1 AND (g.display_name_ci COLLATE "C") LIKE $2
  AND (g.display_name_ci COLLATE "C") > $3
ORDER BY (g.display_name_ci COLLATE "C")
LIMIT $4;

-- name: directory_team
SELECT g.id, g.display_name, g.external_id, g.created_at, g.updated_at,
       (SELECT count(*) FROM scim_group_members m
         WHERE m.org_id = g.org_id AND m.group_id = g.id) AS member_count
FROM scim_groups g
WHERE g.org_id = $1 AND g.id = $2;

-- name: directory_team_members
-- A page of a team's members in member-id order after $3 (the primary key's order).
SELECT u.id, u.user_name, u.display_name, u.active
FROM scim_group_members m
JOIN scim_users u ON u.org_id = m.org_id AND u.id = m.user_id
WHERE m.org_id = $1 AND m.group_id = $2 AND m.user_id > $3
ORDER BY m.user_id
LIMIT $4;

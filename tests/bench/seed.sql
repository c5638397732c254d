-- Bulk users for benchmarks and plan tests: $1 org, $2 first number, $3 last number.
INSERT INTO scim_users (
    org_id, id, user_name, user_name_ci, external_id, active, display_name, emails_ci,
    attrs, attrs_ci, created_at, updated_at
)
SELECT $1, gen_random_uuid(), u.name, lower(u.name), '00u' || g, true, 'User ' || g,
       ARRAY[lower(u.name)], u.doc, u.doc, now(), now()
FROM generate_series($2::int, $3::int) AS g
CROSS JOIN LATERAL (SELECT 'user' || g || '@example.com' AS name) AS n
CROSS JOIN LATERAL (
    SELECT n.name,
           jsonb_build_object(
               'userName', n.name, 'active', true, 'displayName', 'user ' || g,
               'externalId', '00u' || g,
               'name', jsonb_build_object('givenName', 'user', 'familyName', g::text),
               'emails', jsonb_build_array(
                   jsonb_build_object('value', n.name, 'type', 'work', 'primary', true))
           ) AS doc
) AS u;

-- name: insert_group
-- A group, its first members ($10: JSON [[user id, display, folded display], …]) and
-- its log row ($11), in one statement.
-- A member who is not a user of the org fails the foreign key and the whole statement.
WITH inserted AS (
    INSERT INTO scim_groups (
        org_id, id, display_name, display_name_ci, external_id, attrs, attrs_ci,
        created_at, updated_at
    ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING org_id, id, seq
), members AS (
    INSERT INTO scim_group_members (org_id, group_id, user_id, display, display_ci)
    SELECT i.org_id, i.id, (m.member ->> 0)::uuid, m.member ->> 1, m.member ->> 2
    FROM inserted i, jsonb_array_elements($10::jsonb) AS m(member)
    ON CONFLICT DO NOTHING
)
SELECT seq, CASE WHEN $11::jsonb IS NOT NULL THEN record_provisioning_log($11) END AS log_id
FROM inserted;

-- name: get_group
-- $3: whether to read the members (excludedAttributes=members skips them entirely).
SELECT g.id, g.seq, g.attrs, g.version, g.created_at, g.updated_at,
       CASE WHEN $3::boolean THEN group_members_json(g.org_id, g.id) END AS members
FROM scim_groups g
WHERE g.org_id = $1 AND g.id = $2;

-- name: lock_group
-- The group row, locked: membership changes of one group are serialised by it.
SELECT g.id, g.seq, g.attrs, g.version, g.created_at, g.updated_at, NULL::jsonb AS members
FROM scim_groups g
WHERE g.org_id = $1 AND g.id = $2
FOR UPDATE;

-- name: get_group_by_display_name
SELECT id, display_name FROM scim_groups WHERE org_id = $1 AND display_name_ci = $2;

-- name: change_group
-- Apply a group change decided by the gateway, with its log row ($13), in one
-- statement: new attributes ($3-$7), version $8; members to remove, a few ($9,
-- empty when many) or many ($14: JSON {"<user id>": 0, …}, null when few); to
-- add ($11: JSON [["<user id>", display, folded display], …]), and when $10 they
-- replace the membership (everyone else is removed); $12 updated_at.
-- A long list is one JSON parameter: one string to send, not a value per member.
-- Whatever the plan and the statistics (a team just filled has none yet), the
-- cost grows with the members named and the team's size, never with their
-- product: a few are found by primary key, many or those not kept by a lookup
-- in the sorted keys of a jsonb object (built once) for each member of the team.
WITH updated AS (
    UPDATE scim_groups
    SET display_name = $3, display_name_ci = $4, external_id = $5, attrs = $6, attrs_ci = $7,
        version = $8, updated_at = $12
    WHERE org_id = $1 AND id = $2
    RETURNING org_id, id
), removed AS (
    -- The whole primary key as the index condition: a few index probes, also in a
    -- team of 100,000.
    DELETE FROM scim_group_members m
    WHERE m.org_id = $1 AND m.group_id = $2 AND m.user_id = ANY($9::uuid[])
      AND EXISTS (SELECT 1 FROM updated)
    RETURNING m.user_id
), removed_many AS (
    DELETE FROM scim_group_members m
    WHERE $14::jsonb IS NOT NULL
      AND m.org_id = $1 AND m.group_id = $2 AND $14::jsonb ? m.user_id::text
      AND EXISTS (SELECT 1 FROM updated)
    RETURNING m.user_id
), replaced AS (
    DELETE FROM scim_group_members m
    WHERE $10::boolean
      AND m.org_id = $1 AND m.group_id = $2
      AND NOT (
          (SELECT coalesce(jsonb_object_agg(a.member ->> 0, 0), '{}'::jsonb)
           FROM jsonb_array_elements($11::jsonb) AS a(member))
          ? m.user_id::text
      )
      AND EXISTS (SELECT 1 FROM updated)
    RETURNING m.user_id
), added AS (
    INSERT INTO scim_group_members (org_id, group_id, user_id, display, display_ci)
    SELECT g.org_id, g.id, (a.member ->> 0)::uuid, a.member ->> 1, a.member ->> 2
    FROM updated g, jsonb_array_elements($11::jsonb) AS a(member)
    ON CONFLICT (org_id, group_id, user_id) DO UPDATE
        SET display = EXCLUDED.display, display_ci = EXCLUDED.display_ci
        WHERE scim_group_members.display IS DISTINCT FROM EXCLUDED.display
    RETURNING user_id
)
SELECT (SELECT count(*) FROM removed) + (SELECT count(*) FROM removed_many)
           + (SELECT count(*) FROM replaced) AS removed,
       (SELECT count(*) FROM added) AS added,
       CASE WHEN $13::jsonb IS NOT NULL THEN record_provisioning_log($13) END AS log_id
FROM updated;

-- name: delete_group
WITH deleted AS (
    DELETE FROM scim_groups
    WHERE org_id = $1 AND id = $2 AND ($3::bigint IS NULL OR version = $3)
    RETURNING id, display_name, display_name_ci
)
-- The log row names the deleted team, which the gateway did not read.
SELECT id, record_provisioning_log($4 || jsonb_build_object(
           'target_name', display_name, 'target_key', 'group:' || display_name_ci)) AS log_id
FROM deleted;

-- name: unknown_member_ids
-- For a 400 naming them: of the ids a change adds ($2: JSON [["<user id>", …], …],
-- as change_group's $11), those that are not users of the org (the first $4 in
-- the order sent, and how many); of every id it names (added, or removed: $3,
-- JSON ["<user id>", …]), the users, which were not applied either (the first $4,
-- sorted, and how many). Each id is one primary-key probe.
WITH named AS (
    SELECT x.id, min(x.n) AS n,
           EXISTS (SELECT 1 FROM scim_users u WHERE u.org_id = $1 AND u.id = x.id) AS known
    FROM (
        SELECT (a.member ->> 0)::uuid AS id, a.n
        FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS a(member, n)
        UNION ALL
        SELECT r.id::uuid, NULL FROM jsonb_array_elements_text($3::jsonb) AS r(id)
    ) AS x
    GROUP BY x.id
)
SELECT ARRAY(SELECT id FROM named WHERE n IS NOT NULL AND NOT known ORDER BY n LIMIT $4)
           AS unknown,
       (SELECT count(*) FROM named WHERE n IS NOT NULL AND NOT known) AS unknown_count,
       ARRAY(SELECT id FROM named WHERE known ORDER BY id::text LIMIT $4) AS not_applied,
       (SELECT count(*) FROM named WHERE known) AS not_applied_count;

-- name: list_groups
-- One page of all groups and their number; paging as in list_users. $1 org, $2 the
-- walk (null: not a walk), $3 rows before the page, $4 limit, $5 whether to read
-- members.
WITH position AS (
    /*page_position*/
), page AS (
    SELECT t.total, t.changes, t.before = $3 AS by_keyset, p.*
    FROM (
        SELECT c.total, c.changes, w.after,
               CASE WHEN w.after = 0 THEN 0
                    WHEN c.changes = w.changes THEN $3
                    ELSE (SELECT count(*) FROM scim_groups g WHERE g.org_id = $1 AND g.seq <= w.after)
               END AS before
        FROM (
            SELECT coalesce(sum(total), 0)::bigint AS total, coalesce(sum(changes), 0)::bigint AS changes
            FROM scim_resource_counts WHERE org_id = $1 AND resource = 'Group'
        ) AS c, (
            SELECT coalesce(max(seq), 0) AS after, max(changes) AS changes FROM position
        ) AS w
        OFFSET 0  -- computed once, not inlined into each branch
    ) AS t
    LEFT JOIN LATERAL (
        (SELECT g.id, g.seq, g.attrs, g.version, g.created_at, g.updated_at,
                CASE WHEN $5::boolean THEN group_members_json(g.org_id, g.id) END AS members
         FROM scim_groups g
         WHERE t.before = $3 AND g.org_id = $1 AND g.seq > t.after
         ORDER BY /*order*/
         LIMIT $4)
        UNION ALL
        (SELECT g.id, g.seq, g.attrs, g.version, g.created_at, g.updated_at,
                CASE WHEN $5::boolean THEN group_members_json(g.org_id, g.id) END AS members
         FROM scim_groups g
         WHERE t.before <> $3 AND g.org_id = $1
         ORDER BY /*order*/
         OFFSET $3 LIMIT $4)
    ) AS p ON true
), noted AS (
    /*note_page_position*/
)
SELECT * FROM page;

-- name: find_groups
-- Like list_groups, with a filter from the gateway's compiler (values from $6).
WITH position AS (
    /*page_position*/
), page AS (
    SELECT t.total, NULL::bigint AS changes, t.before = $3 AS by_keyset, p.*
    FROM (SELECT coalesce(max(seq), 0) AS after FROM position) AS w
    CROSS JOIN LATERAL (
        SELECT w.after, count(*) AS total, count(*) FILTER (WHERE g.seq <= w.after) AS before
        FROM scim_groups g
        WHERE g.org_id = $1 AND /*filter*/
    ) AS t
    LEFT JOIN LATERAL (
        (SELECT g.id, g.seq, g.attrs, g.version, g.created_at, g.updated_at,
                CASE WHEN $5::boolean THEN group_members_json(g.org_id, g.id) END AS members
         FROM scim_groups g
         WHERE t.before = $3 AND g.org_id = $1 AND g.seq > t.after AND /*filter*/
         ORDER BY /*order*/
         LIMIT $4)
        UNION ALL
        (SELECT g.id, g.seq, g.attrs, g.version, g.created_at, g.updated_at,
                CASE WHEN $5::boolean THEN group_members_json(g.org_id, g.id) END AS members
         FROM scim_groups g
         WHERE t.before <> $3 AND g.org_id = $1 AND /*filter*/
         ORDER BY /*order*/
         OFFSET $3 LIMIT $4)
    ) AS p ON true
), noted AS (
    /*note_page_position*/
)
SELECT * FROM page;

-- name: absent_members
-- Which of these user ids ($3: JSON ["<user id>", …]) are not members, the first
-- $4 sorted (to note removals that matched nobody); one primary-key probe each.
SELECT r.user_id::uuid AS user_id
FROM jsonb_array_elements_text($3::jsonb) AS r(user_id)
WHERE NOT EXISTS (
    SELECT 1 FROM scim_group_members m
    WHERE m.org_id = $1 AND m.group_id = $2 AND m.user_id = r.user_id::uuid
    OFFSET 0
)
ORDER BY r.user_id
LIMIT $4;

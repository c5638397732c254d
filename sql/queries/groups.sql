-- name: insert_group
-- A group, its first members ($10 user ids, $12 their displays) and its log row ($11),
-- in one statement.
-- A member who is not a user of the org fails the foreign key and the whole statement.
WITH inserted AS (
    INSERT INTO scim_groups (
        org_id, id, display_name, display_name_ci, external_id, attrs, attrs_ci,
        created_at, updated_at
    ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    RETURNING org_id, id, seq
), members AS (
    INSERT INTO scim_group_members (org_id, group_id, user_id, display, display_ci)
    SELECT i.org_id, i.id, m.user_id, m.display, m.display_ci
    FROM inserted i, unnest($10::uuid[], $12::text[], $13::text[]) AS m(user_id, display, display_ci)
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
-- statement: new attributes ($3-$7), version $8; members to remove ($9), to keep
-- when replacing ($10, null when not replacing), to add ($11, displays $14 and
-- folded $15); $12 updated_at.
WITH updated AS (
    UPDATE scim_groups
    SET display_name = $3, display_name_ci = $4, external_id = $5, attrs = $6, attrs_ci = $7,
        version = $8, updated_at = $12
    WHERE org_id = $1 AND id = $2
    RETURNING org_id, id
), removed AS (
    -- The whole primary key as the index condition: a few index probes, also in a
    -- team of 100,000 (given statistics, which autovacuum keeps).
    DELETE FROM scim_group_members m
    WHERE m.org_id = $1 AND m.group_id = $2 AND m.user_id = ANY($9::uuid[])
      AND EXISTS (SELECT 1 FROM updated)
    RETURNING m.user_id
), replaced AS (
    DELETE FROM scim_group_members m
    WHERE $10::uuid[] IS NOT NULL
      AND m.org_id = $1 AND m.group_id = $2 AND NOT (m.user_id = ANY($10::uuid[]))
      AND EXISTS (SELECT 1 FROM updated)
    RETURNING m.user_id
), added AS (
    INSERT INTO scim_group_members (org_id, group_id, user_id, display, display_ci)
    SELECT g.org_id, g.id, a.user_id, a.display, a.display_ci
    FROM updated g, unnest($11::uuid[], $14::text[], $15::text[]) AS a(user_id, display, display_ci)
    ON CONFLICT (org_id, group_id, user_id) DO UPDATE
        SET display = EXCLUDED.display, display_ci = EXCLUDED.display_ci
        WHERE scim_group_members.display IS DISTINCT FROM EXCLUDED.display
    RETURNING user_id
)
SELECT (SELECT array_agg(user_id) FROM (SELECT user_id FROM removed UNION ALL SELECT user_id FROM replaced) AS r)
           AS removed,
       (SELECT array_agg(user_id) FROM added) AS added,
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

-- name: users_not_in_org
-- Which of these user ids are not users of the org (for a 400 naming them).
SELECT x.id FROM unnest($2::uuid[]) AS x(id)
WHERE NOT EXISTS (SELECT 1 FROM scim_users u WHERE u.org_id = $1 AND u.id = x.id);

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

-- name: existing_members
-- Which of these user ids are members (to note removals that matched nobody).
SELECT user_id FROM scim_group_members WHERE org_id = $1 AND group_id = $2 AND user_id = ANY($3::uuid[]);

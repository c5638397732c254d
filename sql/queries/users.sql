-- name: insert_user
-- Insert a user and its provisioning-log row ($13) in one statement; the row
-- warns when another user has one of this user's emails ($8).
WITH inserted AS (
    INSERT INTO scim_users (
        org_id, id, user_name, user_name_ci, external_id, active, display_name,
        emails_ci, attrs, attrs_ci, created_at, updated_at
    ) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
    RETURNING seq
)
SELECT seq, record_provisioning_log(with_duplicate_warning($13, $1, $2, $8)) AS log_id FROM inserted;

-- name: get_user
SELECT id, seq, user_name, external_id, active, attrs, version, created_at, updated_at,
       user_groups_json(org_id, id) AS groups
FROM scim_users
WHERE org_id = $1 AND id = $2;

-- name: get_user_for_update
-- The slow path of a write that lost an optimistic race: lock, then change.
SELECT id, seq, user_name, external_id, active, attrs, version, created_at, updated_at,
       user_groups_json(org_id, id) AS groups
FROM scim_users
WHERE org_id = $1 AND id = $2
FOR UPDATE;

-- name: get_user_by_user_name
SELECT id, user_name FROM scim_users WHERE org_id = $1 AND user_name_ci = $2;

-- name: get_user_by_external_id
SELECT id, user_name FROM scim_users WHERE org_id = $1 AND external_id = $2;

-- name: update_user
-- Replace a user's attributes if it is still at version $13, with its log row ($14).
WITH updated AS (
    UPDATE scim_users
    SET user_name = $3, user_name_ci = $4, external_id = $5, active = $6,
        display_name = $7, emails_ci = $8, attrs = $9, attrs_ci = $10,
        updated_at = $11, version = $12
    WHERE org_id = $1 AND id = $2 AND version = $13
    RETURNING id
)
SELECT id, record_provisioning_log(with_duplicate_warning($14, $1, $2, $8)) AS log_id FROM updated;

-- name: delete_user
-- Delete a user at version $3 (any version when null), with its log row ($4).
WITH deleted AS (
    DELETE FROM scim_users
    WHERE org_id = $1 AND id = $2 AND ($3::bigint IS NULL OR version = $3)
    RETURNING id, user_name, user_name_ci, display_name
)
-- The log row names the deleted user, which the gateway did not read.
SELECT id,
       record_provisioning_log($4 || jsonb_build_object(
           'target_name', user_name, 'target_display', display_name, 'target_key', 'user:' || user_name_ci))
           AS log_id
FROM deleted;

-- name: list_users
-- One page of all users and their number (kept in scim_resource_counts), and where
-- the next page of this walk starts, noted for whichever process serves it.
-- $1 org, $2 the walk (null: not a walk, e.g. sorted), $3 rows before the page
-- (startIndex - 1), $4 limit. The store puts the fragments of sql/queries/paging.sql
-- in place of the page_position markers.
-- `position` is where a process that served the previous page of the walk noted
-- it ended: its last seq and the org's `changes` then. The page continues after
-- that seq only when exactly $3 users come up to it in the current order, so that
-- it starts at startIndex: proven for free when no user was inserted or deleted
-- since (`changes` unchanged), else by counting; otherwise it is found by OFFSET.
-- by_keyset says which one served it. `noted` notes where the next page starts,
-- when rows follow this page.
WITH position AS (
    /*page_position*/
), page AS (
    SELECT t.total, t.changes, t.before = $3 AS by_keyset,
           p.id, p.seq, p.attrs, p.version, p.created_at, p.updated_at, p.groups
    FROM (
        SELECT c.total, c.changes, w.after,
               CASE WHEN w.after = 0 THEN 0
                    WHEN c.changes = w.changes THEN $3
                    ELSE (SELECT count(*) FROM scim_users u WHERE u.org_id = $1 AND u.seq <= w.after)
               END AS before
        FROM (
            SELECT coalesce(sum(total), 0)::bigint AS total, coalesce(sum(changes), 0)::bigint AS changes
            FROM scim_resource_counts WHERE org_id = $1 AND resource = 'User'
        ) AS c, (
            SELECT coalesce(max(seq), 0) AS after, max(changes) AS changes FROM position
        ) AS w
        OFFSET 0  -- computed once, not inlined into each branch
    ) AS t
    LEFT JOIN LATERAL (
        (SELECT u.id, u.seq, u.attrs, u.version, u.created_at, u.updated_at,
                user_groups_json(u.org_id, u.id) AS groups
         FROM scim_users u
         WHERE t.before = $3 AND u.org_id = $1 AND u.seq > t.after
         ORDER BY /*order*/
         LIMIT $4)
        UNION ALL
        (SELECT u.id, u.seq, u.attrs, u.version, u.created_at, u.updated_at,
                user_groups_json(u.org_id, u.id) AS groups
         FROM scim_users u
         WHERE t.before <> $3 AND u.org_id = $1
         ORDER BY /*order*/
         OFFSET $3 LIMIT $4)
    ) AS p ON true
), noted AS (
    /*note_page_position*/
)
SELECT * FROM page;

-- name: find_users
-- One page of users and the total, in one statement. The gateway replaces the
-- /*filter*/ and /*order*/ markers with fragments from its filter compiler (fixed
-- SQL, values as parameters from $5). $1-$4 as in list_users; the users up to the
-- noted position are counted in the same scan as the total.
WITH position AS (
    /*page_position*/
), page AS (
    SELECT t.total, NULL::bigint AS changes, t.before = $3 AS by_keyset,
           p.id, p.seq, p.attrs, p.version, p.created_at, p.updated_at, p.groups
    FROM (SELECT coalesce(max(seq), 0) AS after FROM position) AS w
    CROSS JOIN LATERAL (
        SELECT w.after, count(*) AS total, count(*) FILTER (WHERE u.seq <= w.after) AS before
        FROM scim_users u
        WHERE u.org_id = $1 AND /*filter*/
    ) AS t
    LEFT JOIN LATERAL (
        (SELECT u.id, u.seq, u.attrs, u.version, u.created_at, u.updated_at,
                user_groups_json(u.org_id, u.id) AS groups
         FROM scim_users u
         WHERE t.before = $3 AND u.org_id = $1 AND u.seq > t.after AND /*filter*/
         ORDER BY /*order*/
         LIMIT $4)
        UNION ALL
        (SELECT u.id, u.seq, u.attrs, u.version, u.created_at, u.updated_at,
                user_groups_json(u.org_id, u.id) AS groups
         FROM scim_users u
         WHERE t.before <> $3 AND u.org_id = $1 AND /*filter*/
         ORDER BY /*order*/
         OFFSET $3 LIMIT $4)
    ) AS p ON true
), noted AS (
    /*note_page_position*/
)
SELECT * FROM page;

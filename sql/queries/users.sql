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

-- name: lookup_user_name
-- Okta's lookup before every create (filter userName eq "x", the first page, every
-- attribute): the ListResponse and its provisioning-log row in one statement, one
-- round trip (issue 12). $1 org, $2 the folded userName, $3 the SCIM API's base URL,
-- $4 the log row when no user has the name (complete), $5 the row when one has: the
-- statement adds its target and the response, cut to $6 characters. The response is
-- rendered here, as gateway.scim.users.render_user renders a user (a test holds the
-- two equal), so that the row keeps exactly what was sent.
WITH found AS (
    SELECT u.id, u.user_name, u.user_name_ci, u.display_name,
           jsonb_build_object(
               'schemas', CASE
                   WHEN u.attrs ? 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'
                   THEN jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:User',
                                          'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User')
                   ELSE jsonb_build_array('urn:ietf:params:scim:schemas:core:2.0:User') END,
               'id', u.id,
               'meta', jsonb_build_object(
                   'resourceType', 'User',
                   'created', to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
                       || CASE WHEN date_part('microseconds', u.created_at)::bigint % 1000000 = 0 THEN ''
                               ELSE to_char(u.created_at AT TIME ZONE 'UTC', '.US') END || 'Z',
                   'lastModified', to_char(u.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
                       || CASE WHEN date_part('microseconds', u.updated_at)::bigint % 1000000 = 0 THEN ''
                               ELSE to_char(u.updated_at AT TIME ZONE 'UTC', '.US') END || 'Z',
                   'location', $3 || '/Users/' || u.id,
                   'version', 'W/"' || u.version || '"'))
           || (u.attrs - 'groups')
           || coalesce((
               SELECT jsonb_build_object('groups', jsonb_agg(jsonb_build_object(
                          'value', g->>'value', 'display', g->'display',
                          '$ref', $3 || '/Groups/' || (g->>'value'), 'type', 'direct')))
               FROM jsonb_array_elements(user_groups_json(u.org_id, u.id)) AS g
               HAVING count(*) > 0), '{}') AS resource
    FROM scim_users u
    -- The same condition twice: a plan made while the org had few users (a first sync
    -- runs before any ANALYZE, and a pooled connection keeps the plan it made at the
    -- sixth run) may read either userName index, and under the C collation's
    -- condition both find the user directly instead of walking the org's rows by
    -- org_id. Equality is byte equality under either collation.
    WHERE u.org_id = $1 AND u.user_name_ci = $2 AND u.user_name_ci COLLATE "C" = $2
), answer AS (
    SELECT f.*,
           CASE WHEN f.id IS NOT NULL THEN jsonb_build_object(
               'schemas', jsonb_build_array('urn:ietf:params:scim:api:messages:2.0:ListResponse'),
               'totalResults', 1, 'startIndex', 1, 'itemsPerPage', 1,
               'Resources', jsonb_build_array(f.resource))::text END AS body
    FROM (SELECT) AS one LEFT JOIN found f ON true
)
SELECT a.id, a.body,
       record_provisioning_log(
           CASE WHEN a.id IS NULL THEN $4::jsonb
                ELSE $5::jsonb || jsonb_build_object(
                    'target_id', a.id,
                    'target_name', left(a.user_name, 512),
                    'target_display', left(a.display_name, 512),
                    'target_key', 'user:' || left(a.user_name_ci, 512),
                    'response_body', CASE WHEN length(a.body) > $6
                        THEN left(a.body, $6) || '…[cut, ' || octet_length(a.body) || ' bytes in all]'
                        ELSE a.body END)
           END
           -- The row was made before the statement: add the statement's own time.
           || jsonb_build_object('duration_ms',
                  ($4::jsonb->>'duration_ms')::float8
                  + 1000 * extract(epoch FROM clock_timestamp() - statement_timestamp())))
           AS log_result
FROM answer a;

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
           p.id, p.seq, p.attrs, p.version, p.created_at, p.updated_at
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
        (SELECT u.id, u.seq, u.attrs, u.version, u.created_at, u.updated_at
         FROM scim_users u
         WHERE t.before = $3 AND u.org_id = $1 AND u.seq > t.after
         ORDER BY /*order*/
         LIMIT $4)
        UNION ALL
        (SELECT u.id, u.seq, u.attrs, u.version, u.created_at, u.updated_at
         FROM scim_users u
         WHERE t.before <> $3 AND u.org_id = $1
         ORDER BY /*order*/
         OFFSET $3 LIMIT $4)
    ) AS p ON true
), noted AS (
    /*note_page_position*/
), teams AS MATERIALIZED (  -- one call for the page, not one per row
    SELECT users_groups_json($1, ARRAY(SELECT id FROM page WHERE id IS NOT NULL)) AS by_user
)
SELECT page.*, coalesce(teams.by_user -> page.id::text, '[]'::jsonb) AS groups
FROM page CROSS JOIN teams;

-- name: find_users
-- One page of users and the total, in one statement. The gateway replaces the
-- /*filter*/ and /*order*/ markers with fragments from its filter compiler (fixed
-- SQL, values as parameters from $5). $1-$4 as in list_users; the users up to the
-- noted position are counted in the same scan as the total.
WITH position AS (
    /*page_position*/
), page AS (
    SELECT t.total, NULL::bigint AS changes, t.before = $3 AS by_keyset,
           p.id, p.seq, p.attrs, p.version, p.created_at, p.updated_at
    FROM (SELECT coalesce(max(seq), 0) AS after FROM position) AS w
    CROSS JOIN LATERAL (
        SELECT w.after, count(*) AS total, count(*) FILTER (WHERE u.seq <= w.after) AS before
        FROM scim_users u
        WHERE u.org_id = $1 AND /*filter*/
    ) AS t
    LEFT JOIN LATERAL (
        (SELECT u.id, u.seq, u.attrs, u.version, u.created_at, u.updated_at
         FROM scim_users u
         WHERE t.before = $3 AND u.org_id = $1 AND u.seq > t.after AND /*filter*/
         ORDER BY /*order*/
         LIMIT $4)
        UNION ALL
        (SELECT u.id, u.seq, u.attrs, u.version, u.created_at, u.updated_at
         FROM scim_users u
         WHERE t.before <> $3 AND u.org_id = $1 AND /*filter*/
         ORDER BY /*order*/
         OFFSET $3 LIMIT $4)
    ) AS p ON true
), noted AS (
    /*note_page_position*/
), teams AS MATERIALIZED (  -- one call for the page, not one per row
    SELECT users_groups_json($1, ARRAY(SELECT id FROM page WHERE id IS NOT NULL)) AS by_user
)
SELECT page.*, coalesce(teams.by_user -> page.id::text, '[]'::jsonb) AS groups
FROM page CROSS JOIN teams;

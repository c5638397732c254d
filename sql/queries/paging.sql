-- Where list walks are: the page queries (list_users, find_users, list_groups,
-- find_groups) read and note positions in scim_page_positions (migration 0011) in
-- their own statement. The store puts the two fragments below in place of their
-- /*page_position*/ and /*note_page_position*/ markers. In every page query $1 is
-- the org, $2 the walk (SHA-256 of the resource type and filter text; null for a
-- sorted list, which is no walk), $3 the rows before the page (startIndex - 1).

-- name: page_position
-- Where the walk's previous page ended, as the process that served it noted: the
-- last seq it served and, for an unfiltered walk, the org's `changes` then.
SELECT p.seq, p.changes FROM scim_page_positions p
WHERE p.org_id = $1 AND p.walk = $2 AND p.start_index = $3 + 1

-- name: note_page_position
-- Where the next page of the walk starts, noted only when rows follow this page
-- (a lookup or the last page notes nothing). A page served twice (a retry) notes
-- the same position again and renews its 15 minutes.
INSERT INTO scim_page_positions (org_id, walk, start_index, seq, changes)
SELECT $1, $2, $3 + 1 + count(*), max(seq), max(changes)
FROM page
WHERE id IS NOT NULL AND $2::bytea IS NOT NULL
HAVING count(*) > 0 AND $3 + count(*) < max(total)
ON CONFLICT (org_id, walk, start_index) DO UPDATE
    SET seq = EXCLUDED.seq, changes = EXCLUDED.changes, expires_at = EXCLUDED.expires_at

-- name: delete_expired_page_positions
-- Upkeep: positions of walks that nobody continued within their 15 minutes. Run
-- under the upkeep lock, hourly.
DELETE FROM scim_page_positions WHERE expires_at < now();

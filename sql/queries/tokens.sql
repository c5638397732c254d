-- name: insert_token
-- $5 is the lifetime (an interval), NULL for a token that never expires.
INSERT INTO scim_tokens (org_id, digest, last4, note, expires_at)
VALUES ($1, $2, $3, $4, now() + $5::interval)
RETURNING org_id, id, last4, note, created_at, expires_at;

-- name: lock_org
-- Serialises token creation per org, so the active-token limit holds under races.
SELECT 1 FROM orgs WHERE id = $1 FOR UPDATE;

-- name: active_tokens
SELECT org_id, id, last4, note, created_at, expires_at, revoked_at,
       last_used_at, last_used_user_agent, host(last_used_ip) AS last_used_ip
FROM scim_tokens
WHERE org_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
ORDER BY created_at, id;

-- name: list_tokens
SELECT org_id, id, last4, note, created_at, expires_at, revoked_at,
       last_used_at, last_used_user_agent, host(last_used_ip) AS last_used_ip
FROM scim_tokens
WHERE org_id = $1
ORDER BY created_at, id;

-- name: revoke_token
-- Revoking twice keeps the first revocation time.
UPDATE scim_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE org_id = $1 AND id = $2
RETURNING org_id, id, last4, revoked_at;

-- name: find_token_org
-- The CLI revokes by token id alone; this finds the org it belongs to.
SELECT org_id FROM scim_tokens WHERE id = $1;

-- name: authenticate_token
-- One round trip per request: find the token by digest and, when it is usable and
-- was last used more than $2 seconds ago, record this use ($3 user agent, $4 IP).
-- The token decides the org, so this is the one query that cannot filter on org_id.
WITH found AS (
    SELECT org_id, id, digest, revoked_at, expires_at,
           revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) AS usable
    FROM scim_tokens
    WHERE digest = $1
), touched AS (
    UPDATE scim_tokens t
    SET last_used_at = now(), last_used_user_agent = $3, last_used_ip = $4
    FROM found f
    WHERE t.org_id = f.org_id AND t.id = f.id AND f.usable
      AND (t.last_used_at IS NULL OR t.last_used_at < now() - make_interval(secs => $2))
    RETURNING t.id
)
SELECT f.org_id, f.id, f.digest, f.revoked_at, f.expires_at, f.usable,
       (SELECT count(*) FROM touched) AS touched
FROM found f;

-- name: token_owner
-- The org and id of a token found inside a malformed Authorization header; no use
-- is recorded (the request is refused).
SELECT org_id, id, digest FROM scim_tokens WHERE digest = $1;

-- name: get_org_token
-- The dashboard only ever names tokens of the signed-in admin's org.
SELECT org_id, id, last4, note, created_at, expires_at, revoked_at,
       last_used_at, last_used_user_agent, host(last_used_ip) AS last_used_ip
FROM scim_tokens
WHERE org_id = $1 AND id = $2;

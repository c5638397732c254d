-- name: insert_admin
INSERT INTO dashboard_admins (org_id, email, email_ci, password_hash)
VALUES ($1, $2, $3, $4)
RETURNING org_id, id, email, created_at, disabled_at, last_sign_in_at;

-- name: list_admins
-- $1: an org id, or null for every org.
SELECT a.org_id, a.id, a.email, a.created_at, a.disabled_at, a.last_sign_in_at, o.slug AS org_slug
FROM dashboard_admins a
JOIN orgs o ON o.id = a.org_id
WHERE $1::uuid IS NULL OR a.org_id = $1
ORDER BY o.slug, a.email_ci;

-- name: count_admins
SELECT count(*) FROM dashboard_admins;

-- name: disable_admin
-- Disabling ends the admin's sessions in the same statement.
WITH disabled AS (
    UPDATE dashboard_admins SET disabled_at = coalesce(disabled_at, now())
    WHERE email_ci = $1
    RETURNING org_id, id, email, created_at, disabled_at, last_sign_in_at
), ended AS (
    DELETE FROM dashboard_sessions s USING disabled d
    WHERE s.org_id = d.org_id AND s.admin_id = d.id
)
SELECT * FROM disabled;

-- name: find_admin_for_sign_in
SELECT org_id, id, password_hash, disabled_at FROM dashboard_admins WHERE email_ci = $1;

-- name: update_admin_password_hash
-- argon2 parameters changed since this hash was made: store the rehash.
UPDATE dashboard_admins SET password_hash = $3 WHERE org_id = $1 AND id = $2;

-- name: signin_failures
-- Failed sign-ins in the last $3 seconds for the account ($1, a folded email, known
-- or not) and for the client address ($2, may be null).
SELECT count(*) FILTER (WHERE scope = 'account' AND key = $1) AS account_failures,
       count(*) FILTER (WHERE scope = 'ip' AND key = $2) AS ip_failures
FROM dashboard_signin_failures
WHERE ((scope = 'account' AND key = $1) OR (scope = 'ip' AND key = $2))
  AND failed_at > now() - make_interval(secs => $3);

-- name: record_signin_failure
-- One row per scope; rows of these keys older than the window ($3 seconds) go.
WITH purged AS (
    DELETE FROM dashboard_signin_failures
    WHERE ((scope = 'account' AND key = $1) OR (scope = 'ip' AND key = $2))
      AND failed_at <= now() - make_interval(secs => $3)
)
INSERT INTO dashboard_signin_failures (scope, key)
SELECT scope, key FROM (VALUES ('account', $1::text), ('ip', $2::text)) AS v (scope, key)
WHERE key IS NOT NULL;

-- name: start_session
-- A successful sign-in: forget the account's failures, drop the admin's expired
-- sessions, record the sign-in and store the new session.
WITH cleared AS (
    DELETE FROM dashboard_signin_failures WHERE scope = 'account' AND key = $5
), expired AS (
    DELETE FROM dashboard_sessions
    WHERE admin_id = $2
      AND (last_seen_at <= now() - make_interval(secs => $6)
           OR created_at <= now() - make_interval(secs => $7))
), signed_in AS (
    UPDATE dashboard_admins SET last_sign_in_at = now() WHERE org_id = $1 AND id = $2
)
INSERT INTO dashboard_sessions (digest, org_id, admin_id, csrf_token)
VALUES ($3, $1, $2, $4);

-- name: resume_session
-- The session of a request: alive when seen within the idle timeout ($2 seconds),
-- younger than the absolute timeout ($3 seconds), and its admin not disabled.
-- last_seen_at is written at most every 30 seconds.
WITH found AS (
    SELECT s.digest, s.org_id, s.admin_id, s.csrf_token, s.created_at, s.last_seen_at,
           a.email, o.slug AS org_slug, o.name AS org_name
    FROM dashboard_sessions s
    JOIN dashboard_admins a ON a.org_id = s.org_id AND a.id = s.admin_id
    JOIN orgs o ON o.id = s.org_id
    WHERE s.digest = $1
      AND a.disabled_at IS NULL
      AND s.last_seen_at > now() - make_interval(secs => $2)
      AND s.created_at > now() - make_interval(secs => $3)
), touched AS (
    UPDATE dashboard_sessions s SET last_seen_at = now()
    FROM found f
    WHERE s.digest = f.digest AND f.last_seen_at < now() - interval '30 seconds'
    RETURNING s.digest
)
SELECT f.org_id, f.admin_id, f.csrf_token, f.created_at, f.email, f.org_slug, f.org_name,
       (SELECT count(*) FROM touched) AS touched
FROM found f;

-- name: end_session
DELETE FROM dashboard_sessions WHERE digest = $1;

-- name: insert_setup_code
INSERT INTO dashboard_setup_codes (digest) VALUES ($1);

-- name: use_setup_code
-- Valid until used, and only while there is no admin: using one deletes them all.
DELETE FROM dashboard_setup_codes
WHERE NOT EXISTS (SELECT 1 FROM dashboard_admins)
  AND EXISTS (SELECT 1 FROM dashboard_setup_codes WHERE digest = $1)
RETURNING digest;

-- name: setup_code_exists
SELECT EXISTS (SELECT 1 FROM dashboard_setup_codes WHERE digest = $1)
   AND NOT EXISTS (SELECT 1 FROM dashboard_admins);

-- name: get_org_by_id
SELECT id, slug, name, created_at FROM orgs WHERE id = $1;

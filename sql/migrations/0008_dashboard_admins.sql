-- Why: the admin dashboard. Org admins sign in with email and password (argon2id
-- hashes only); their sessions live here, not in the cookie, so sign-out and
-- disabling an admin end them at once and every worker process sees the same
-- sessions. Sign-in failures are kept per account and per client address to
-- throttle password guessing, and a one-time setup code lets a fresh install create
-- its first org and admin in the browser.

CREATE TABLE dashboard_admins (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    email text NOT NULL,
    -- Sign-in is by email alone, so an email names one admin across all orgs.
    email_ci text NOT NULL,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz,
    last_sign_in_at timestamptz,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX dashboard_admins_email_key ON dashboard_admins (email_ci);
CREATE UNIQUE INDEX dashboard_admins_id_key ON dashboard_admins (id);

-- The cookie carries a random session id; only its SHA-256 digest is stored.
CREATE TABLE dashboard_sessions (
    digest bytea PRIMARY KEY CHECK (length(digest) = 32),
    org_id uuid NOT NULL,
    admin_id uuid NOT NULL,
    -- The synchronizer token every state-changing request must carry.
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, admin_id) REFERENCES dashboard_admins (org_id, id) ON DELETE CASCADE
);
CREATE INDEX dashboard_sessions_admin ON dashboard_sessions (admin_id);

-- One row per failed sign-in: scope 'account' (key: the folded email, known or not)
-- or 'ip' (key: the client address).
CREATE TABLE dashboard_signin_failures (
    scope text NOT NULL CHECK (scope IN ('account', 'ip')),
    key text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dashboard_signin_failures_key ON dashboard_signin_failures (scope, key, failed_at);

-- First-run setup codes (SHA-256 digests), printed on the console by `serve` while
-- there is no admin; all are deleted when the first admin is created.
CREATE TABLE dashboard_setup_codes (
    digest bytea PRIMARY KEY CHECK (length(digest) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The dashboard's user search: userName prefixes in byte order, so LIKE 'prefix%'
-- and the keyset order use one index whatever the database's collation.
CREATE INDEX scim_users_user_name_c ON scim_users (org_id, (user_name_ci COLLATE "C"));
CREATE INDEX scim_groups_display_name_c ON scim_groups (org_id, (display_name_ci COLLATE "C"));

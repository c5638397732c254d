-- Why: the ground every later migration stands on: orgs, their SCIM tokens, and a
-- provisioning-log row for every request under the SCIM base path.
--
-- Citus: tables that belong to an org carry org_id as the first column of their
-- primary key so they can be distributed by org_id later. scim_tokens is read by
-- digest before the org is known (the token decides the org), so it is meant to
-- be a reference table: small, and replicated to every node.

CREATE TABLE orgs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE scim_tokens (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    digest bytea NOT NULL CHECK (length(digest) = 32),
    last4 text NOT NULL,
    note text,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz,
    last_used_user_agent text,
    last_used_ip inet,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX scim_tokens_digest_key ON scim_tokens (digest);
CREATE UNIQUE INDEX scim_tokens_id_key ON scim_tokens (id);

-- One row per request under the SCIM base path, and per request that missed every
-- route. org_id is null when the request proved no org (no or bad token).
CREATE TABLE provisioning_log (
    id bigint GENERATED ALWAYS AS IDENTITY,
    -- No foreign key: the log is append-only and written on every request.
    org_id uuid,
    occurred_at timestamptz NOT NULL,
    token_id uuid,
    request_id text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    query text NOT NULL DEFAULT '',
    status smallint NOT NULL,
    duration_ms real NOT NULL,
    scim_type text,
    detail text,
    auth_failure text,
    user_agent text,
    client_ip inet,
    -- Redacted (no password, no token) and cut to the log body limit.
    request_body text,
    response_body text,
    -- Facts about the request worth showing the admin that are not errors,
    -- e.g. "base URL has a trailing slash", "ignored attribute x".
    notes text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (id)
);
CREATE INDEX provisioning_log_org_latest ON provisioning_log (org_id, occurred_at DESC, id DESC);
CREATE INDEX provisioning_log_request_id ON provisioning_log (request_id);

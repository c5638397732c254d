-- Why: SCIM Users, and one function that writes a provisioning-log row so a change
-- and its row go to the server as a single statement.
--
-- Case-insensitive matching (RFC 7643 caseExact: false) is done on values folded in
-- the gateway (Python str.casefold), stored beside the originals: attrs_ci mirrors
-- attrs with every caseExact=false string folded. Results then do not depend on the
-- server's locale or PostgreSQL version, and filters compare folded values exactly.

CREATE FUNCTION record_provisioning_log(entry jsonb) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO provisioning_log (
        org_id, occurred_at, token_id, request_id, method, path, query, status,
        duration_ms, scim_type, detail, auth_failure, user_agent, client_ip,
        request_body, response_body, notes
    )
    SELECT r.org_id, r.occurred_at, r.token_id, r.request_id, r.method, r.path,
           coalesce(r.query, ''), r.status,
           -- The gateway measures up to sending this statement; add the statement's own time.
           r.duration_ms + 1000 * extract(epoch FROM clock_timestamp() - statement_timestamp()),
           r.scim_type, r.detail, r.auth_failure, r.user_agent, r.client_ip,
           r.request_body, r.response_body, coalesce(r.notes, '{}')
    FROM jsonb_populate_record(NULL::provisioning_log, entry) AS r
    RETURNING id
$$;

CREATE TABLE scim_users (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    -- Paging order: stable, and lets an import walk the org by keyset, not OFFSET.
    seq bigint GENERATED ALWAYS AS IDENTITY,
    user_name text NOT NULL,
    user_name_ci text NOT NULL,
    external_id text,
    active boolean,
    display_name text,
    -- Folded values of every emails[].value, for index-backed email lookups.
    emails_ci text[] NOT NULL DEFAULT '{}',
    attrs jsonb NOT NULL,
    attrs_ci jsonb NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, id)
);
-- A unique index decides userName clashes, never a check-then-insert.
CREATE UNIQUE INDEX scim_users_user_name_key ON scim_users (org_id, user_name_ci);
CREATE INDEX scim_users_external_id ON scim_users (org_id, external_id);
CREATE INDEX scim_users_seq ON scim_users (org_id, seq);
-- fastupdate off: the pending list would make every email lookup (Okta's, and the
-- duplicate-account check on every create) scan up to 4 MB of unsorted entries.
CREATE INDEX scim_users_emails ON scim_users USING gin (emails_ci) WITH (fastupdate = off);

-- How many resources each org has, kept by statement-level triggers, so the
-- totalResults of an unfiltered list (every page of an Okta import) is one row
-- read instead of a count over a million users.
CREATE TABLE scim_resource_counts (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    resource text NOT NULL,
    total bigint NOT NULL CHECK (total >= 0),
    PRIMARY KEY (org_id, resource)
);

CREATE FUNCTION count_inserted_resources() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO scim_resource_counts (org_id, resource, total)
    SELECT org_id, TG_ARGV[0], count(*) FROM inserted_rows GROUP BY org_id
    ON CONFLICT (org_id, resource)
        DO UPDATE SET total = scim_resource_counts.total + EXCLUDED.total;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_deleted_resources() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE scim_resource_counts c
    SET total = c.total - d.n
    FROM (SELECT org_id, count(*) AS n FROM deleted_rows GROUP BY org_id) AS d
    WHERE c.org_id = d.org_id AND c.resource = TG_ARGV[0];
    RETURN NULL;
END
$$;

CREATE TRIGGER scim_users_count_insert AFTER INSERT ON scim_users
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_inserted_resources('User');
CREATE TRIGGER scim_users_count_delete AFTER DELETE ON scim_users
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_deleted_resources('User');

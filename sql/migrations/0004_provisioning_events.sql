-- Why: the provisioning log reads like Okta's: each row gets an event, an outcome,
-- a target and a reason, and belongs to a sync job. The log grows fastest of all
-- tables, so it is partitioned by day and retention drops whole partitions.
--
-- PostgreSQL 15 has no identity columns on partitioned tables: ids come from a
-- sequence.

ALTER TABLE provisioning_log RENAME TO provisioning_log_0001;
ALTER INDEX provisioning_log_org_latest RENAME TO provisioning_log_0001_org_latest;
ALTER INDEX provisioning_log_request_id RENAME TO provisioning_log_0001_request_id;

CREATE SEQUENCE provisioning_log_row_seq AS bigint;

CREATE TABLE provisioning_log (
    id bigint NOT NULL DEFAULT nextval('provisioning_log_row_seq'),
    org_id uuid,
    occurred_at timestamptz NOT NULL,
    token_id uuid,
    job_id uuid,
    request_id text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    query text NOT NULL DEFAULT '',
    status smallint NOT NULL,
    duration_ms real NOT NULL,
    event text NOT NULL DEFAULT 'Unknown',
    event_detail text,
    outcome text NOT NULL DEFAULT 'success' CHECK (outcome IN ('success', 'failure', 'warning')),
    target_type text,
    target_id uuid,
    target_name text,
    target_display text,
    reason text,
    scim_type text,
    detail text,
    auth_failure text,
    user_agent text,
    client_ip inet,
    request_body text,
    response_body text,
    notes text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE provisioning_log_row_seq OWNED BY provisioning_log.id;

-- Rows for a day without a partition land here rather than being lost.
CREATE TABLE provisioning_log_default PARTITION OF provisioning_log DEFAULT;

-- The dashboard's and CLI's queries: latest for an org, by outcome, by event, by
-- target, by job; and one request by its id.
CREATE INDEX provisioning_log_org_latest ON provisioning_log (org_id, occurred_at DESC, id DESC);
CREATE INDEX provisioning_log_org_outcome ON provisioning_log (org_id, outcome, occurred_at DESC, id DESC);
CREATE INDEX provisioning_log_org_event ON provisioning_log (org_id, event, occurred_at DESC, id DESC);
CREATE INDEX provisioning_log_org_target ON provisioning_log (org_id, target_id, occurred_at DESC, id DESC);
CREATE INDEX provisioning_log_org_job ON provisioning_log (org_id, job_id, occurred_at, id);
CREATE INDEX provisioning_log_request_id ON provisioning_log (request_id);

-- The current sync job of each token: consecutive requests less than five minutes
-- apart belong to one job. One row per token, so concurrent first requests of a
-- sync agree on the job (ON CONFLICT), and it is only written when a job starts
-- or its last activity is more than ten seconds old.
CREATE TABLE sync_jobs (
    org_id uuid NOT NULL,
    token_id uuid NOT NULL,
    job_id uuid NOT NULL,
    started_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    PRIMARY KEY (token_id)
);

CREATE FUNCTION current_sync_job(p_org uuid, p_token uuid, p_at timestamptz) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    job uuid;
    last timestamptz;
BEGIN
    IF p_token IS NULL OR p_org IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT job_id, last_at INTO job, last FROM sync_jobs WHERE token_id = p_token;
    IF job IS NOT NULL AND last >= p_at - interval '5 minutes' THEN
        IF last < p_at - interval '10 seconds' THEN
            UPDATE sync_jobs SET last_at = greatest(last_at, p_at) WHERE token_id = p_token;
        END IF;
        RETURN job;
    END IF;
    INSERT INTO sync_jobs AS s (org_id, token_id, job_id, started_at, last_at)
    VALUES (p_org, p_token, gen_random_uuid(), p_at, p_at)
    ON CONFLICT (token_id) DO UPDATE SET
        job_id = CASE WHEN s.last_at < EXCLUDED.last_at - interval '5 minutes'
                      THEN EXCLUDED.job_id ELSE s.job_id END,
        started_at = CASE WHEN s.last_at < EXCLUDED.last_at - interval '5 minutes'
                          THEN EXCLUDED.started_at ELSE s.started_at END,
        last_at = greatest(s.last_at, EXCLUDED.last_at)
    RETURNING s.job_id INTO job;
    RETURN job;
END
$$;

CREATE OR REPLACE FUNCTION record_provisioning_log(entry jsonb) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO provisioning_log (
        org_id, occurred_at, token_id, job_id, request_id, method, path, query, status,
        duration_ms, event, event_detail, outcome, target_type, target_id, target_name,
        target_display, reason, scim_type, detail, auth_failure, user_agent, client_ip,
        request_body, response_body, notes
    )
    SELECT r.org_id, r.occurred_at, r.token_id,
           current_sync_job(r.org_id, r.token_id, r.occurred_at),
           r.request_id, r.method, r.path, coalesce(r.query, ''), r.status,
           -- The gateway measures up to sending this statement; add the statement's own time.
           r.duration_ms + 1000 * extract(epoch FROM clock_timestamp() - statement_timestamp()),
           coalesce(r.event, 'Unknown'), r.event_detail, coalesce(r.outcome, 'success'),
           r.target_type, r.target_id, r.target_name, r.target_display, r.reason,
           r.scim_type, r.detail, r.auth_failure, r.user_agent, r.client_ip,
           r.request_body, r.response_body, coalesce(r.notes, '{}')
    FROM jsonb_populate_record(NULL::provisioning_log, entry) AS r
    RETURNING id
$$;

-- Daily partitions (UTC days) from `p_from` for `p_days` days; existing ones are kept.
CREATE FUNCTION ensure_provisioning_log_partitions(p_from date, p_days int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    day date;
    made int := 0;
    name text;
BEGIN
    FOR i IN 0 .. p_days - 1 LOOP
        day := p_from + i;
        name := 'provisioning_log_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF provisioning_log FOR VALUES FROM (%L) TO (%L)',
                name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
            made := made + 1;
        END IF;
    END LOOP;
    RETURN made;
END
$$;

-- Retention: drop every daily partition that ends before `p_before`.
CREATE FUNCTION drop_provisioning_log_partitions(p_before date) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped int := 0;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'provisioning_log'::regclass
          AND c.relname ~ '^provisioning_log_[0-9]{8}$'
          AND to_date(substring(c.relname FROM '[0-9]{8}$'), 'YYYYMMDD') + 1 <= p_before
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;

SELECT ensure_provisioning_log_partitions((now() AT TIME ZONE 'UTC')::date - 1, 9);

INSERT INTO provisioning_log (
    id, org_id, occurred_at, token_id, request_id, method, path, query, status, duration_ms,
    outcome, scim_type, detail, auth_failure, user_agent, client_ip, request_body, response_body, notes
)
SELECT id, org_id, occurred_at, token_id, request_id, method, path, query, status, duration_ms,
       CASE WHEN status >= 400 THEN 'failure' ELSE 'success' END,
       scim_type, detail, auth_failure, user_agent, client_ip, request_body, response_body, notes
FROM provisioning_log_0001;
SELECT setval('provisioning_log_row_seq', coalesce((SELECT max(id) FROM provisioning_log_0001), 0) + 1, false);
DROP TABLE provisioning_log_0001;

-- The duplicate-account detector, run inside the statement that creates or
-- updates a user: another user of the org whose userName or email equals one of
-- this user's emails turns the log row into a Warning that names that account.
CREATE FUNCTION with_duplicate_warning(
    entry jsonb, p_org uuid, p_user uuid, p_emails text[]
) RETURNS jsonb
LANGUAGE plpgsql STABLE
-- Planned with the values each time, so the email lookup stays a GIN probe.
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    other record;
    matched text;
    note text;
BEGIN
    IF cardinality(p_emails) = 0 OR (entry->>'outcome') = 'failure' THEN
        RETURN entry;
    END IF;
    -- Two index lookups, the stronger sign first: a userName that is one of these
    -- emails (the userName index), then a shared email (the email GIN index).
    SELECT u.id, u.user_name, u.user_name_ci AS email INTO other
    FROM scim_users u
    WHERE u.org_id = p_org AND u.user_name_ci = ANY(p_emails) AND u.id <> p_user
    LIMIT 1;
    IF other.id IS NOT NULL THEN
        matched := other.email || ' as its userName';
    ELSE
        -- No LIMIT: with one, the planner expects a match within a few hundred rows
        -- and prefers a sequential scan to the GIN index; INTO keeps the first row.
        SELECT u.id, u.user_name, u.emails_ci INTO other
        FROM scim_users u
        WHERE u.emails_ci && p_emails AND u.org_id = p_org AND u.id <> p_user;
        IF other.id IS NULL THEN
            RETURN entry;
        END IF;
        SELECT e || ' as an email' INTO matched FROM unnest(p_emails) AS e WHERE e = ANY(other.emails_ci) LIMIT 1;
    END IF;
    note := 'possible duplicate account: user ' || other.id || ' (' || other.user_name || ') has '
        || matched || '; if Okta''s Application username format changed (e.g. userPrincipalName '
        || 'vs mail), link that user instead of creating another';
    RETURN jsonb_set(jsonb_set(jsonb_set(entry,
        '{notes}', coalesce(entry->'notes', '[]'::jsonb) || to_jsonb(note)),
        '{outcome}', '"warning"'),
        '{event_detail}', to_jsonb(note));
END
$$;

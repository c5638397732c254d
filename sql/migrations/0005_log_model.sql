-- Why: the provisioning log as one model. Every row carries a stable reason code
-- (with its arguments) and a target key (the userName or team name, folded), so
-- guidance, history and metrics read facts instead of prose; each sync job keeps
-- its own summary on write, so listing jobs never scans the log; a failure stays
-- "unresolved" until a later success for the same target; hourly counts serve
-- charts and signals; and a live tail reads by transaction id, so a row whose
-- transaction commits after a later id is never skipped.
--
-- Counters are sharded by backend (pg_backend_pid() % 8): concurrent requests of
-- one job or one hour update different rows instead of queueing on one.

ALTER TABLE provisioning_log ADD COLUMN code text;
ALTER TABLE provisioning_log ADD COLUMN code_args jsonb;
ALTER TABLE provisioning_log ADD COLUMN target_key text COLLATE "C";
-- When the request finished (occurred_at is when it started).
ALTER TABLE provisioning_log ADD COLUMN finished_at timestamptz;
-- The writing transaction, for the live tail. Set without a table rewrite: the
-- default applies to new rows only.
ALTER TABLE provisioning_log ADD COLUMN xid xid8;
ALTER TABLE provisioning_log ALTER COLUMN xid SET DEFAULT pg_current_xact_id();

UPDATE provisioning_log SET finished_at = occurred_at + duration_ms * interval '1 millisecond';

-- History by userName / team name (and the Logs page's "target starts with").
CREATE INDEX provisioning_log_org_target_key
    ON provisioning_log (org_id, target_key, occurred_at DESC, id DESC);
-- `--code` and failures by reason.
CREATE INDEX provisioning_log_org_code ON provisioning_log (org_id, code, occurred_at DESC, id DESC);
-- Event and outcome together without a post-filter.
CREATE INDEX provisioning_log_org_event_outcome
    ON provisioning_log (org_id, event, outcome, occurred_at DESC, id DESC);
-- The live tail: rows of transactions at or after a snapshot's xmin.
CREATE INDEX provisioning_log_org_xid ON provisioning_log (org_id, xid);
-- Replaced by the target-key index and the job summaries.
DROP INDEX provisioning_log_org_event;

-- One row per sync job: when it started, and when it first provisioned (created a
-- user or pushed a team), which makes it a candidate for the org's first sync.
CREATE TABLE sync_job_summaries (
    org_id uuid NOT NULL,
    job_id uuid NOT NULL,
    token_id uuid,
    started_at timestamptz NOT NULL,
    provisioned_at timestamptz,
    PRIMARY KEY (org_id, job_id)
);
CREATE INDEX sync_job_summaries_org_started ON sync_job_summaries (org_id, started_at DESC);
CREATE INDEX sync_job_summaries_org_first_sync
    ON sync_job_summaries (org_id, started_at) WHERE provisioned_at IS NOT NULL;

-- A job's counts, in up to eight shards; a reader sums them.
CREATE TABLE sync_job_counts (
    org_id uuid NOT NULL,
    job_id uuid NOT NULL,
    shard smallint NOT NULL,
    requests integer NOT NULL DEFAULT 0,
    successes integer NOT NULL DEFAULT 0,
    failures integer NOT NULL DEFAULT 0,
    warnings integer NOT NULL DEFAULT 0,
    -- Failures of this job that a later success resolved (in this job or a later one).
    resolved integer NOT NULL DEFAULT 0,
    users integer NOT NULL DEFAULT 0,
    teams integer NOT NULL DEFAULT 0,
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    -- {"<event>|<outcome>": n}
    counts jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (org_id, job_id, shard)
);

-- The users and teams a job touched, once each.
CREATE TABLE sync_job_targets (
    org_id uuid NOT NULL,
    job_id uuid NOT NULL,
    target_key text COLLATE "C" NOT NULL,
    PRIMARY KEY (org_id, job_id, target_key)
);

-- Failures that still need action. A later success for the same target removes
-- them (see record_provisioning_log); org-level failures (authentication, wrong
-- base URL) are resolved by any later success of the org.
CREATE TABLE unresolved_failures (
    org_id uuid NOT NULL,
    log_id bigint NOT NULL,
    occurred_at timestamptz NOT NULL,
    job_id uuid,
    target_key text COLLATE "C" NOT NULL,
    event text NOT NULL,
    PRIMARY KEY (org_id, log_id)
);
CREATE INDEX unresolved_failures_org_target ON unresolved_failures (org_id, target_key);
CREATE INDEX unresolved_failures_org_latest ON unresolved_failures (org_id, occurred_at DESC, log_id DESC);
CREATE INDEX unresolved_failures_org_job ON unresolved_failures (org_id, job_id);

-- Requests per org and UTC hour, in shards: {"e:<event>|<outcome>": n, "c:<code>": n,
-- "m:<METHOD> <Users|Groups>": n}. Charts and signals read these, not the log.
CREATE TABLE provisioning_log_hourly (
    org_id uuid NOT NULL,
    hour timestamptz NOT NULL,
    shard smallint NOT NULL,
    counts jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (org_id, hour, shard)
);

-- Add `n` to each of `keys` in a counts object.
CREATE FUNCTION jsonb_counts_add(counts jsonb, keys text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT counts || coalesce(jsonb_object_agg(k, coalesce((counts->>k)::int, 0) + 1), '{}')
    FROM unnest(keys) AS k
$$;

-- Events that change a user or team: their success resolves every earlier failure
-- of the same target. Other successes resolve failures of their own event.
CREATE FUNCTION provisioning_change_event(event text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT event IN ('Create user', 'Update user attributes', 'Deactivate user',
                     'Reactivate user', 'Delete user', 'Push group', 'Push group members',
                     'Rename group', 'Replace group members', 'Update group', 'Delete group')
$$;

DROP FUNCTION record_provisioning_log(jsonb);

-- One log row with everything kept on write: its job, the job's counts and
-- targets, the hourly counts, and resolution. Returns '<outcome>:<code>' as
-- stored, so the gateway counts exactly what the row says.
CREATE FUNCTION record_provisioning_log(entry jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r provisioning_log;
    v_job uuid;
    row_id bigint;
    v_finished timestamptz;
    v_shard smallint := (pg_backend_pid() % 8)::smallint;
    failure_key text;
    new_target int := 0;
    is_user boolean;
BEGIN
    r := jsonb_populate_record(NULL::provisioning_log, entry);
    -- The gateway measures up to sending this statement; add the statement's own time.
    r.duration_ms := coalesce(r.duration_ms, 0)
        + 1000 * extract(epoch FROM clock_timestamp() - statement_timestamp());
    v_finished := r.occurred_at + r.duration_ms * interval '1 millisecond';
    v_job := current_sync_job(r.org_id, r.token_id, r.occurred_at);
    INSERT INTO provisioning_log (
        org_id, occurred_at, finished_at, token_id, job_id, request_id, method, path, query,
        status, duration_ms, event, event_detail, outcome, code, code_args, target_type,
        target_id, target_name, target_display, target_key, reason, scim_type, detail,
        auth_failure, user_agent, client_ip, request_body, response_body, notes
    ) VALUES (
        r.org_id, r.occurred_at, v_finished, r.token_id, v_job, r.request_id, r.method, r.path,
        coalesce(r.query, ''), r.status, r.duration_ms, coalesce(r.event, 'Unknown'),
        r.event_detail, coalesce(r.outcome, 'success'), r.code, r.code_args, r.target_type,
        r.target_id, r.target_name, r.target_display, r.target_key, r.reason, r.scim_type,
        r.detail, r.auth_failure, r.user_agent, r.client_ip, r.request_body, r.response_body,
        coalesce(r.notes, '{}')
    ) RETURNING id INTO row_id;
    r.outcome := coalesce(r.outcome, 'success');
    IF r.org_id IS NULL THEN
        RETURN r.outcome || ':' || coalesce(r.code, '');
    END IF;

    INSERT INTO provisioning_log_hourly AS h (org_id, hour, shard, counts)
    VALUES (r.org_id, date_trunc('hour', r.occurred_at), v_shard, jsonb_counts_add('{}',
        ARRAY['e:' || coalesce(r.event, 'Unknown') || '|' || r.outcome]
        || CASE WHEN r.code IS NOT NULL THEN ARRAY['c:' || r.code] ELSE '{}' END
        || CASE WHEN r.method IN ('PUT', 'PATCH') AND r.target_type IS NOT NULL
                THEN ARRAY['m:' || r.method || ' ' || r.target_type] ELSE '{}' END))
    ON CONFLICT (org_id, hour, shard) DO UPDATE SET counts = jsonb_counts_add(h.counts,
        ARRAY['e:' || coalesce(r.event, 'Unknown') || '|' || r.outcome]
        || CASE WHEN r.code IS NOT NULL THEN ARRAY['c:' || r.code] ELSE '{}' END
        || CASE WHEN r.method IN ('PUT', 'PATCH') AND r.target_type IS NOT NULL
                THEN ARRAY['m:' || r.method || ' ' || r.target_type] ELSE '{}' END);

    IF v_job IS NOT NULL THEN
        INSERT INTO sync_job_summaries AS s (org_id, job_id, token_id, started_at, provisioned_at)
        VALUES (r.org_id, v_job, r.token_id, r.occurred_at,
                CASE WHEN r.event IN ('Create user', 'Push group') THEN r.occurred_at END)
        ON CONFLICT (org_id, job_id) DO UPDATE SET provisioned_at = EXCLUDED.provisioned_at
            WHERE s.provisioned_at IS NULL AND EXCLUDED.provisioned_at IS NOT NULL;
        IF r.target_key IS NOT NULL THEN
            INSERT INTO sync_job_targets (org_id, job_id, target_key)
            VALUES (r.org_id, v_job, r.target_key) ON CONFLICT DO NOTHING;
            GET DIAGNOSTICS new_target = ROW_COUNT;
        END IF;
        is_user := r.target_type = 'User';
        INSERT INTO sync_job_counts AS c (
            org_id, job_id, shard, requests, successes, failures, warnings, users, teams,
            first_at, last_at, counts
        ) VALUES (
            r.org_id, v_job, v_shard, 1, (r.outcome = 'success')::int, (r.outcome = 'failure')::int,
            (r.outcome = 'warning')::int, CASE WHEN is_user THEN new_target ELSE 0 END,
            CASE WHEN NOT is_user THEN new_target ELSE 0 END, r.occurred_at, v_finished,
            jsonb_build_object(coalesce(r.event, 'Unknown') || '|' || r.outcome, 1)
        ) ON CONFLICT (org_id, job_id, shard) DO UPDATE SET
            requests = c.requests + 1,
            successes = c.successes + EXCLUDED.successes,
            failures = c.failures + EXCLUDED.failures,
            warnings = c.warnings + EXCLUDED.warnings,
            users = c.users + EXCLUDED.users,
            teams = c.teams + EXCLUDED.teams,
            first_at = least(c.first_at, EXCLUDED.first_at),
            last_at = greatest(c.last_at, EXCLUDED.last_at),
            counts = jsonb_counts_add(c.counts, ARRAY[coalesce(r.event, 'Unknown') || '|' || r.outcome]);
    END IF;

    IF r.outcome = 'failure' THEN
        failure_key := CASE
            WHEN r.status = 401 THEN 'org:auth'
            WHEN r.code = 'wrong_base_url' THEN 'org:url'
            WHEN r.target_key IS NOT NULL THEN r.target_key
            ELSE 'event:' || r.event
        END;
        -- A Delete that found nothing left to delete needs no action.
        IF NOT (r.status = 404 AND r.event IN ('Delete user', 'Delete group'))
           AND r.code IS DISTINCT FROM 'client_closed' THEN
            INSERT INTO unresolved_failures (org_id, log_id, occurred_at, job_id, target_key, event)
            VALUES (r.org_id, row_id, r.occurred_at, v_job, failure_key, r.event);
        END IF;
    ELSE
        WITH resolved AS (
            DELETE FROM unresolved_failures f
            WHERE f.org_id = r.org_id
              AND f.occurred_at <= r.occurred_at
              AND (f.target_key IN ('org:auth', 'org:url')
                   OR f.target_key = 'event:' || r.event
                   OR (f.target_key = r.target_key
                       AND (f.event = r.event OR f.event = 'Server error'
                            OR provisioning_change_event(r.event))))
            RETURNING f.job_id
        ), per_job AS (
            SELECT job_id, count(*) AS n FROM resolved WHERE job_id IS NOT NULL GROUP BY job_id
        )
        INSERT INTO sync_job_counts AS c (org_id, job_id, shard, resolved, first_at, last_at)
        SELECT r.org_id, p.job_id, v_shard, p.n, r.occurred_at, r.occurred_at FROM per_job p
        ON CONFLICT (org_id, job_id, shard) DO UPDATE SET resolved = c.resolved + EXCLUDED.resolved;
    END IF;
    RETURN r.outcome || ':' || coalesce(r.code, '');
END
$$;

-- The duplicate-account detector now also sets the row's code and its arguments.
CREATE OR REPLACE FUNCTION with_duplicate_warning(
    entry jsonb, p_org uuid, p_user uuid, p_emails text[]
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    other record;
    matched text;
    how text;
    note text;
BEGIN
    IF cardinality(p_emails) = 0 OR (entry->>'outcome') = 'failure' THEN
        RETURN entry;
    END IF;
    SELECT u.id, u.user_name, u.user_name_ci AS email INTO other
    FROM scim_users u
    WHERE u.org_id = p_org AND u.user_name_ci = ANY(p_emails) AND u.id <> p_user
    LIMIT 1;
    IF other.id IS NOT NULL THEN
        matched := other.email;
        how := 'userName';
    ELSE
        SELECT u.id, u.user_name, u.emails_ci INTO other
        FROM scim_users u
        WHERE u.emails_ci && p_emails AND u.org_id = p_org AND u.id <> p_user;
        IF other.id IS NULL THEN
            RETURN entry;
        END IF;
        SELECT e INTO matched FROM unnest(p_emails) AS e WHERE e = ANY(other.emails_ci) LIMIT 1;
        how := 'email';
    END IF;
    note := 'possible duplicate account: user ' || other.user_name || ' (' || other.id || ') has '
        || matched || ' as its ' || how;
    RETURN entry || jsonb_build_object(
        'notes', coalesce(entry->'notes', '[]'::jsonb) || to_jsonb(note),
        'outcome', 'warning',
        'code', 'duplicate_account',
        'code_args', jsonb_build_object('other_id', other.id, 'other_user_name', other.user_name,
                                        'email', matched, 'matched_as', how),
        'event_detail', note);
END
$$;

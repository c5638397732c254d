-- Why (1): keyset paging across processes and replicas (issue 12). An Okta import
-- walks /Users with startIndex 1, 101, 201, …; the page query continues after the
-- last row of the previous page instead of counting past every earlier row with
-- OFFSET. That position used to live in the memory of the process that served
-- the previous page, so with several workers or replicas most pages fell back to
-- OFFSET. Now the page statement itself notes it here (a data-modifying CTE, no
-- extra round trip) and the next page's statement reads it, whichever process
-- serves it. An entry is a candidate, never trusted: the page query uses it only
-- if it still lands at that startIndex (see sql/queries/paging.sql and list_users), so a stale or foreign
-- entry costs an OFFSET, never a wrong page. Entries expire after 15 minutes
-- (the default below, refreshed on every write); the advisory-locked upkeep
-- deletes expired ones.
CREATE TABLE scim_page_positions (
    org_id uuid NOT NULL,
    -- The walk: SHA-256 of its resource type and filter text (gateway.scim.listing).
    walk bytea NOT NULL CHECK (length(walk) = 32),
    -- The startIndex of the page this position precedes.
    start_index bigint NOT NULL,
    -- The last row served before it, in the walk's (seq) order.
    seq bigint NOT NULL,
    -- The org's inserts and deletes of the type when it was served (scim_resource_counts);
    -- null for a filtered walk, whose page query counts instead.
    changes bigint,
    expires_at timestamptz NOT NULL DEFAULT now() + interval '15 minutes',
    PRIMARY KEY (org_id, walk, start_index)
);
CREATE INDEX scim_page_positions_expires ON scim_page_positions (expires_at);

-- Why (2): ready for Citus with org_id as the distribution column. A distributed
-- table needs the distribution column in its primary key and unique constraints,
-- and refuses rows where it is null. Two tables were not: sync_jobs (keyed by
-- token_id alone) and provisioning_log (keyed by (id, occurred_at), org_id null
-- for requests that proved no org). The reference tables (orgs, scim_tokens, the
-- dashboard's admins, sessions, setup codes and sign-in failures) keep their
-- global keys: see README "Scaling out" and tests/test_citus_ready.py.
--
-- sync_jobs: keyed (org_id, token_id); a token belongs to one org, so no row
-- changes. The function that keeps it is the same with org-qualified keys.
ALTER TABLE sync_jobs DROP CONSTRAINT sync_jobs_pkey, ADD PRIMARY KEY (org_id, token_id);

CREATE OR REPLACE FUNCTION current_sync_job(p_org uuid, p_token uuid, p_at timestamptz) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    job uuid;
    last timestamptz;
BEGIN
    IF p_token IS NULL OR p_org IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT job_id, last_at INTO job, last FROM sync_jobs WHERE org_id = p_org AND token_id = p_token;
    IF job IS NOT NULL AND last >= p_at - interval '5 minutes' THEN
        IF last < p_at - interval '10 seconds' THEN
            UPDATE sync_jobs SET last_at = greatest(last_at, p_at)
            WHERE org_id = p_org AND token_id = p_token;
        END IF;
        RETURN job;
    END IF;
    INSERT INTO sync_jobs AS s (org_id, token_id, job_id, started_at, last_at)
    VALUES (p_org, p_token, gen_random_uuid(), p_at, p_at)
    ON CONFLICT (org_id, token_id) DO UPDATE SET
        job_id = CASE WHEN s.last_at < EXCLUDED.last_at - interval '5 minutes'
                      THEN EXCLUDED.job_id ELSE s.job_id END,
        started_at = CASE WHEN s.last_at < EXCLUDED.last_at - interval '5 minutes'
                          THEN EXCLUDED.started_at ELSE s.started_at END,
        last_at = greatest(s.last_at, EXCLUDED.last_at)
    RETURNING s.job_id INTO job;
    RETURN job;
END
$$;

-- provisioning_log: a row of no org (no token, an unknown one, a wrong URL without
-- a token) is stored under the nil org id 00000000-0000-0000-0000-000000000000,
-- which no org has (orgs.id comes from gen_random_uuid(), version 4). The reads
-- give it back as null (log_row_columns), so nothing above the store changes.
-- The key becomes (org_id, id, occurred_at): occurred_at stays in it because a
-- partitioned table's unique keys must hold its partition key.
--
-- Cost on an existing log: the update touches only rows of no org (found by the
-- indexes that lead with org_id); SET NOT NULL reads every partition once, and
-- the new key is an index built on every partition, all under the migration's
-- lock on the log. Measured: 2.3 s for a log of one million rows, 2 % of them of
-- no org, on a 2-core development machine; on a large log, run `migrate` in a
-- quiet hour (README "Scaling out").
UPDATE provisioning_log SET org_id = '00000000-0000-0000-0000-000000000000' WHERE org_id IS NULL;
ALTER TABLE provisioning_log ALTER COLUMN org_id SET NOT NULL;
DO $$
DECLARE
    old_key text;
BEGIN
    SELECT conname INTO STRICT old_key FROM pg_constraint
    WHERE conrelid = 'provisioning_log'::regclass AND contype = 'p';
    EXECUTE format('ALTER TABLE provisioning_log DROP CONSTRAINT %I', old_key);
END
$$;
ALTER TABLE provisioning_log ADD CONSTRAINT provisioning_log_pkey PRIMARY KEY (org_id, id, occurred_at);

-- As in 0005, except that a row of no org is stored under the nil org id.
CREATE OR REPLACE FUNCTION record_provisioning_log(entry jsonb) RETURNS text
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
        coalesce(r.org_id, '00000000-0000-0000-0000-000000000000'), r.occurred_at, v_finished,
        r.token_id, v_job, r.request_id, r.method, r.path,
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

-- Issue 12: every log row of a sync job wrote its summary row with
-- INSERT … ON CONFLICT DO UPDATE … WHERE, which locks the existing row even when the
-- WHERE leaves it unchanged, until the transaction commits. So every request of a
-- job queued on that one row: under 16 concurrent lookups, two thirds of the time
-- PostgreSQL spent on them was waiting for it (pg_locks: sync_job_summaries tuple).
-- The summary is now inserted once (ON CONFLICT DO NOTHING takes no row lock) and
-- updated only while its first provisioning time is unset.
--
-- As in 0011, except for the summary.
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
    new_summary int;
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
        INSERT INTO sync_job_summaries (org_id, job_id, token_id, started_at, provisioned_at)
        VALUES (r.org_id, v_job, r.token_id, r.occurred_at,
                CASE WHEN r.event IN ('Create user', 'Push group') THEN r.occurred_at END)
        ON CONFLICT (org_id, job_id) DO NOTHING;
        GET DIAGNOSTICS new_summary = ROW_COUNT;
        IF new_summary = 0 AND r.event IN ('Create user', 'Push group') THEN
            -- Locks the summary only while provisioned_at is still unset.
            UPDATE sync_job_summaries SET provisioned_at = r.occurred_at
            WHERE org_id = r.org_id AND job_id = v_job AND provisioned_at IS NULL;
        END IF;
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

-- name: insert_log_row
-- One row, from the JSON that `gateway.store.provisioning_log.log_json` builds;
-- returns '<outcome>:<code>' as stored.
SELECT record_provisioning_log($1);

-- name: insert_log_rows
-- Several rows in one statement, in order: $1 is a JSON array of `log_json` objects.
SELECT count(record_provisioning_log(r.entry)) FROM jsonb_array_elements($1::jsonb) AS r(entry);

-- name: log_row_columns
-- The columns of a LogRow, for the reads below: the store puts them in place of
-- their log_row_columns marker, and with log_row_unresolved in place of the
-- log_row marker. A row of no org is stored under the nil org id (migration 0011)
-- and read as null.
SELECT l.id, nullif(l.org_id, '00000000-0000-0000-0000-000000000000') AS org_id,
       l.occurred_at, l.finished_at, l.token_id, l.job_id, l.request_id, l.method, l.path, l.query, l.status, l.duration_ms, l.event, l.event_detail, l.outcome,
       l.code, l.code_args, l.reason, l.target_type, l.target_id, l.target_name,
       l.target_display, l.target_key, l.scim_type, l.detail, l.auth_failure, l.user_agent,
       host(l.client_ip) AS client_ip, l.request_body, l.response_body, l.notes,
       l.xid::text::bigint AS xid

-- name: log_row_unresolved
-- Whether a failure row still needs action (NULL for other outcomes).
SELECT CASE WHEN l.outcome = 'failure' THEN EXISTS (
           SELECT 1 FROM unresolved_failures u WHERE u.org_id = l.org_id AND u.log_id = l.id
       ) END AS unresolved

-- name: log_page
-- An org's rows, newest first, before a (occurred_at, id) cursor. $1 org, $2 since,
-- $3 until, $4/$5 cursor, $6 limit. The gateway replaces the filters marker with one fixed
-- fragment per filter that is set (values from $7 on), so every plan, generic or
-- custom, sees exactly the conditions that apply and uses their index.
SELECT /*log_row*/
FROM provisioning_log l
WHERE l.org_id = $1
  AND l.occurred_at >= $2 AND l.occurred_at < $3
  AND (l.occurred_at, l.id) < ($4, $5)
  /*filters*/
ORDER BY l.occurred_at DESC, l.id DESC
LIMIT $6;

-- name: log_page_prefix
-- Like log_page, for a target "name*": users' keys in [$7, $8), teams' in [$9, $10),
-- other filters from $11 (the filters marker, in both branches). The key ranges drive
-- the page: the position of every matching row comes from the target-key index, and
-- only the newest $6 rows are read whole. Read newest first through the time index,
-- a page of names whose rows bunch in time (a first sync creates them together) reads
-- most of the log before it finds them; the planner cannot know they bunch.
WITH matching AS MATERIALIZED (
    SELECT l.occurred_at, l.id
    FROM provisioning_log l
    WHERE l.org_id = $1 AND l.target_key >= $7::text AND l.target_key < $8::text
      AND l.occurred_at >= $2 AND l.occurred_at < $3
      AND (l.occurred_at, l.id) < ($4, $5)
      /*filters*/
    UNION ALL
    SELECT l.occurred_at, l.id
    FROM provisioning_log l
    WHERE l.org_id = $1 AND l.target_key >= $9::text AND l.target_key < $10::text
      AND l.occurred_at >= $2 AND l.occurred_at < $3
      AND (l.occurred_at, l.id) < ($4, $5)
      /*filters*/
)
SELECT /*log_row*/
FROM (SELECT m.occurred_at, m.id FROM matching m
      ORDER BY m.occurred_at DESC, m.id DESC LIMIT $6) AS p
JOIN provisioning_log l ON l.org_id = $1 AND l.id = p.id AND l.occurred_at = p.occurred_at
ORDER BY l.occurred_at DESC, l.id DESC;

-- name: log_page_target
-- Like log_page, for one user's or team's rows: the userName key $7, the team-name key
-- $8, other filters from $9 (the filters marker). A branch per key reads the
-- target-key index, which holds a key's rows in time order; an ANY over both keys
-- loses that order, and the plan made for any name (the generic plan a pooled
-- connection keeps) then walks the whole log by time for a name with few rows.
SELECT /*log_row*/
FROM (
    SELECT p.occurred_at, p.id
    FROM unnest(ARRAY[$7::text, $8::text]) AS k(target_key)
    CROSS JOIN LATERAL (
        SELECT l.occurred_at, l.id
        FROM provisioning_log l
        WHERE l.org_id = $1 AND l.target_key = k.target_key
          AND l.occurred_at >= $2 AND l.occurred_at < $3
          AND (l.occurred_at, l.id) < ($4, $5)
          /*filters*/
        ORDER BY l.occurred_at DESC, l.id DESC
        LIMIT $6
    ) AS p
) AS p
JOIN provisioning_log l ON l.org_id = $1 AND l.id = p.id AND l.occurred_at = p.occurred_at
ORDER BY l.occurred_at DESC, l.id DESC
LIMIT $6;

-- name: log_page_event
-- Like log_page, for one event ($7) whatever its outcome, other filters from $8 (the
-- filters marker). A branch per outcome reads the event+outcome index in time order,
-- so a rare event costs a few index reads: a plan made for any event (the generic
-- plan a pooled connection keeps) otherwise walks the whole log by time for it.
SELECT /*log_row*/
FROM (
    SELECT p.occurred_at, p.id
    FROM unnest(ARRAY['success', 'failure', 'warning']) AS o(outcome)
    CROSS JOIN LATERAL (
        SELECT l.occurred_at, l.id
        FROM provisioning_log l
        WHERE l.org_id = $1 AND l.event = $7::text AND l.outcome = o.outcome
          AND l.occurred_at >= $2 AND l.occurred_at < $3
          AND (l.occurred_at, l.id) < ($4, $5)
          /*filters*/
        ORDER BY l.occurred_at DESC, l.id DESC
        LIMIT $6
    ) AS p
) AS p
JOIN provisioning_log l ON l.org_id = $1 AND l.id = p.id AND l.occurred_at = p.occurred_at
ORDER BY l.occurred_at DESC, l.id DESC
LIMIT $6;

-- name: log_page_unresolved
-- Like log_page, for failures that still need action: read from the small table of
-- unresolved failures, newest first (the filters marker as in log_page; filters on
-- the log's own columns go to the log-filters marker). Each unresolved failure
-- fetches its row by primary key in a LATERAL that cannot be flattened (LIMIT 1),
-- so the page is a walk of the small table that stops at the limit: at 10 million
-- rows the planner otherwise prefers joining against the whole log.
SELECT /*log_row_columns*/, true AS unresolved
FROM unresolved_failures u
CROSS JOIN LATERAL (
    SELECT * FROM provisioning_log l
    WHERE l.org_id = u.org_id AND l.id = u.log_id AND l.occurred_at = u.occurred_at
      /*log_filters*/
    LIMIT 1
) AS l
WHERE u.org_id = $1
  AND u.occurred_at >= $2 AND u.occurred_at < $3
  AND (u.occurred_at, u.log_id) < ($4, $5)
  /*filters*/
ORDER BY u.occurred_at DESC, u.log_id DESC
LIMIT $6;

-- name: log_page_unattributed
-- Rows no org could be found for (no token, an unknown one), for operators: kept
-- under the nil org id. $1 since, $2 until, $3/$4 cursor, $5 limit.
SELECT /*log_row_columns*/, NULL::boolean AS unresolved
FROM provisioning_log l
WHERE l.org_id = '00000000-0000-0000-0000-000000000000'
  AND l.occurred_at >= $1 AND l.occurred_at < $2
  AND (l.occurred_at, l.id) < ($3, $4)
ORDER BY l.occurred_at DESC, l.id DESC
LIMIT $5;

-- name: log_row
-- One row of an org, with whether it still needs action.
SELECT /*log_row*/
FROM provisioning_log l
WHERE l.org_id = $1 AND l.id = $2;

-- name: log_target_history
-- A user's or team's rows, newest first: by target key ($2) or by id ($3).
SELECT /*log_row*/
FROM provisioning_log l
WHERE l.org_id = $1
  -- Two index probes (target key, target id), OR'ed in a bitmap.
  AND (l.target_key = ANY($2::text[]) OR l.target_id = $3::uuid)
  AND (l.occurred_at, l.id) < ($4, $5)
ORDER BY l.occurred_at DESC, l.id DESC
LIMIT $6;

-- name: log_tail_start
-- The snapshot a tail starts from: rows it cannot see are the tail's.
SELECT pg_current_snapshot()::text;

-- name: log_tail
-- Rows of the org committed since snapshot $2 (invisible to it, visible now), not
-- delivered in an earlier batch ($3), started after $4 (partition pruning); and
-- this statement's own snapshot, from which the next call goes on.
SELECT h.snapshot, p.*
FROM (SELECT pg_current_snapshot()::text AS snapshot) AS h
LEFT JOIN LATERAL (
    SELECT /*log_row*/
    FROM provisioning_log l
    WHERE l.org_id = $1
      AND l.xid >= pg_snapshot_xmin($2::text::pg_snapshot)
      AND NOT pg_visible_in_snapshot(l.xid, $2::text::pg_snapshot)
      AND l.id <> ALL($3::bigint[])
      AND l.occurred_at >= $4
    ORDER BY l.xid, l.id
    LIMIT $5
) AS p ON true;

-- name: first_sync_job
-- The org's first sync: its first job that created a user or pushed a team.
SELECT job_id FROM sync_job_summaries
WHERE org_id = $1 AND provisioned_at IS NOT NULL
ORDER BY started_at
LIMIT 1;

-- name: list_jobs
-- Sync jobs that started at or after $2 (the job marker: one job, $4), newest first, from their
-- summaries: counts summed over the shards, unresolved failures counted.
SELECT s.job_id, s.token_id, s.started_at, s.provisioned_at,
       coalesce(c.last_at, s.started_at) AS ended_at,
       coalesce(c.requests, 0) AS requests, coalesce(c.successes, 0) AS successes,
       coalesce(c.failures, 0) AS failures, coalesce(c.warnings, 0) AS warnings,
       coalesce(c.resolved, 0) AS resolved, coalesce(c.users, 0) AS users,
       coalesce(c.teams, 0) AS teams, c.counts::text AS counts,
       (SELECT count(*) FROM unresolved_failures u WHERE u.org_id = s.org_id AND u.job_id = s.job_id)
           AS unresolved
FROM sync_job_summaries s
LEFT JOIN LATERAL (
    SELECT max(k.last_at) AS last_at, sum(k.requests)::int AS requests,
           sum(k.successes)::int AS successes, sum(k.failures)::int AS failures,
           sum(k.warnings)::int AS warnings, sum(k.resolved)::int AS resolved,
           sum(k.users)::int AS users, sum(k.teams)::int AS teams,
           (SELECT jsonb_object_agg(e.key, e.n) FROM (
                SELECT kv.key, sum(kv.value::int) AS n
                FROM sync_job_counts k2, jsonb_each_text(k2.counts) AS kv
                WHERE k2.org_id = s.org_id AND k2.job_id = s.job_id
                GROUP BY kv.key) AS e) AS counts
    FROM sync_job_counts k
    WHERE k.org_id = s.org_id AND k.job_id = s.job_id
) AS c ON true
WHERE s.org_id = $1 AND s.started_at >= $2 /*job*/
ORDER BY s.started_at DESC
LIMIT $3;

-- name: log_hourly
-- Requests per hour from the hour $2 falls in to before $3, by counter key, summed over
-- the shards (a range of the primary key).
SELECT h.hour, kv.key, sum(kv.value::int) AS n
FROM provisioning_log_hourly h, jsonb_each_text(h.counts) AS kv
WHERE h.org_id = $1 AND h.hour >= date_trunc('hour', $2::timestamptz) AND h.hour < $3
GROUP BY h.hour, kv.key
ORDER BY h.hour;

-- name: log_hourly_outcomes
-- Requests by outcome in buckets of $4 hours (aligned to the Unix epoch), from the hour
-- $2 falls in to before $3: the Logs page's chart. Each row's event keys
-- ("e:<event>|<outcome>") are summed within the row (a LATERAL over its few keys)
-- before the rows are grouped: grouping every key of a month of rows by name costs
-- several times more.
SELECT to_timestamp(floor(extract(epoch FROM h.hour) / ($4::int * 3600)) * ($4::int * 3600))
           AS bucket,
       sum(o.success)::bigint AS success, sum(o.warning)::bigint AS warning,
       sum(o.failure)::bigint AS failure
FROM provisioning_log_hourly h
CROSS JOIN LATERAL (
    SELECT coalesce(sum(kv.value::int) FILTER (WHERE kv.key LIKE '%|success'), 0) AS success,
           coalesce(sum(kv.value::int) FILTER (WHERE kv.key LIKE '%|warning'), 0) AS warning,
           coalesce(sum(kv.value::int) FILTER (WHERE kv.key LIKE '%|failure'), 0) AS failure
    FROM jsonb_each_text(h.counts) AS kv
    WHERE kv.key LIKE 'e:%'
) AS o
WHERE h.org_id = $1 AND h.hour >= date_trunc('hour', $2::timestamptz) AND h.hour < $3
GROUP BY 1
ORDER BY 1;

-- name: ensure_log_partitions
SELECT ensure_provisioning_log_partitions($1::date, $2::int);

-- name: drop_log_partitions
SELECT drop_provisioning_log_partitions($1::date);

-- name: try_upkeep_lock
-- Periodic log upkeep runs in one process at a time ("scim-gateway log upkeep").
SELECT pg_try_advisory_lock(6636323005470001);

-- name: upkeep_unlock
SELECT pg_advisory_unlock(6636323005470001);

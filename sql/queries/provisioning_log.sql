-- name: insert_log_row
-- One row, from the JSON that `gateway.store.provisioning_log.log_json` builds.
SELECT record_provisioning_log($1);

-- name: log_page
-- The newest rows of an org, newest first, before a (occurred_at, id) cursor.
-- $1 org, $2 since, $3/$4 cursor, $5 limit, $6 the leading filter's value (see
-- /*leading*/, replaced by one fixed fragment so the matching index is used),
-- $7 outcome and $8 event as further optional filters.
SELECT id, org_id, occurred_at, token_id, job_id, request_id, method, path, query, status,
       duration_ms, event, event_detail, outcome, reason, target_type, target_id, target_name,
       target_display, scim_type, detail, auth_failure, user_agent,
       host(client_ip) AS client_ip, request_body, response_body, notes
FROM provisioning_log
WHERE org_id = $1
  AND occurred_at >= $2
  AND (occurred_at, id) < ($3, $4)
  /*leading*/
  AND ($7::text IS NULL OR outcome = $7)
  AND ($8::text IS NULL OR event = $8)
ORDER BY occurred_at DESC, id DESC
LIMIT $5;

-- name: list_jobs
-- Sync jobs of an org that started at or after $2, newest first, with counts.
SELECT job_id, min(occurred_at) AS started_at, max(occurred_at) AS ended_at,
       count(*) AS requests,
       count(*) FILTER (WHERE outcome = 'success') AS successes,
       count(*) FILTER (WHERE outcome = 'failure') AS failures,
       count(*) FILTER (WHERE outcome = 'warning') AS warnings
FROM provisioning_log
WHERE org_id = $1 AND job_id IS NOT NULL AND occurred_at >= $2
GROUP BY job_id
ORDER BY min(occurred_at) DESC
LIMIT $3;

-- name: job_counts
-- One job's requests by event and outcome.
SELECT event, outcome, count(*) AS n
FROM provisioning_log
WHERE org_id = $1 AND job_id = $2
GROUP BY event, outcome
ORDER BY event, outcome;

-- name: first_job
-- The org's first sync: the job of its oldest row that has one.
SELECT job_id FROM provisioning_log
WHERE org_id = $1 AND job_id IS NOT NULL
ORDER BY occurred_at, id
LIMIT 1;

-- name: ensure_log_partitions
SELECT ensure_provisioning_log_partitions($1::date, $2::int);

-- name: drop_log_partitions
SELECT drop_provisioning_log_partitions($1::date);

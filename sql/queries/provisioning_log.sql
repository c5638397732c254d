-- name: insert_log_row
-- One row, from the JSON that `gateway.store.provisioning_log.log_json` builds.
SELECT record_provisioning_log($1);

-- name: latest_log_rows
SELECT id, org_id, occurred_at, token_id, request_id, method, path, query, status,
       duration_ms, scim_type, detail, auth_failure, user_agent, host(client_ip) AS client_ip,
       request_body, response_body, notes, event, event_detail, outcome, reason,
       target_type, target_id, target_name, target_display, job_id
FROM provisioning_log
WHERE org_id = $1
ORDER BY occurred_at DESC, id DESC
LIMIT $2;

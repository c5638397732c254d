-- name: insert_log_row
INSERT INTO provisioning_log (
    org_id, occurred_at, token_id, request_id, method, path, query, status,
    duration_ms, scim_type, detail, auth_failure, user_agent, client_ip,
    request_body, response_body, notes
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17);

-- name: latest_log_rows
SELECT id, org_id, occurred_at, token_id, request_id, method, path, query, status,
       duration_ms, scim_type, detail, auth_failure, user_agent, host(client_ip) AS client_ip,
       request_body, response_body, notes
FROM provisioning_log
WHERE org_id = $1
ORDER BY occurred_at DESC, id DESC
LIMIT $2;

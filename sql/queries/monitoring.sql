-- name: monitoring_fleet_state
-- What the metrics scrape reports about the database, in one round trip and
-- without counting any large table: users and teams from the per-org counters
-- kept by triggers, deactivated users from a partial index that holds only them,
-- memberships from PostgreSQL's live-row statistic (approximate), tokens and sync
-- jobs from their small tables. A job is stalled when its token has been quiet for
-- 15 minutes to a day after a job with failures: Okta only retries what an admin
-- retries, so those failures are still pending. $1: the stall threshold in seconds.
SELECT
    (SELECT coalesce(sum(total), 0) FROM scim_resource_counts WHERE resource = 'User')::bigint
        AS users,
    (SELECT count(*) FROM scim_users WHERE active IS FALSE) AS users_deactivated,
    (SELECT coalesce(sum(total), 0) FROM scim_resource_counts WHERE resource = 'Group')::bigint
        AS teams,
    (SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables
      WHERE relname = 'scim_group_members')::bigint AS memberships,
    t.tokens_active,
    extract(epoch FROM t.soonest_expiry - now())::float8 AS token_expiry_seconds,
    extract(epoch FROM now() - t.last_used)::float8 AS seconds_since_last_request,
    j.running,
    j.stalled
FROM (
    SELECT count(*) FILTER (WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()))
               AS tokens_active,
           min(expires_at) FILTER (WHERE revoked_at IS NULL AND expires_at > now()) AS soonest_expiry,
           max(last_used_at) AS last_used
    FROM scim_tokens
) AS t, (
    SELECT count(*) FILTER (WHERE s.last_at >= now() - interval '5 minutes') AS running,
           count(*) FILTER (
               WHERE s.last_at < now() - make_interval(secs => $1)
                 AND s.last_at >= now() - interval '1 day'
                 AND EXISTS (
                     SELECT 1 FROM provisioning_log l
                     WHERE l.org_id = s.org_id AND l.outcome = 'failure'
                       AND l.occurred_at >= s.started_at
                       AND l.occurred_at <= s.last_at + interval '1 minute')
           ) AS stalled
    FROM sync_jobs s
) AS j;

-- name: monitoring_org_state
-- The same per org, for the $1 orgs with the most users (the org label's cap).
WITH top AS (
    SELECT org_id, total AS users
    FROM scim_resource_counts
    WHERE resource = 'User'
    ORDER BY total DESC, org_id
    LIMIT $1
)
SELECT o.slug,
       top.users,
       (SELECT count(*) FROM scim_users u
         WHERE u.org_id = top.org_id AND u.active IS FALSE) AS users_deactivated,
       coalesce((SELECT g.total FROM scim_resource_counts g
                  WHERE g.org_id = top.org_id AND g.resource = 'Group'), 0) AS teams,
       (SELECT count(*) FROM scim_tokens t
         WHERE t.org_id = top.org_id AND t.revoked_at IS NULL
           AND (t.expires_at IS NULL OR t.expires_at > now())) AS tokens_active
FROM top
JOIN orgs o ON o.id = top.org_id;

-- name: org_slug
-- The metrics' org label: an org's slug by id.
SELECT slug FROM orgs WHERE id = $1;

-- name: ping
SELECT 1;

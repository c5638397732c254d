-- name: monitoring_fleet_state
-- What the metrics scrape reports about the database, in one round trip and
-- without counting any large table: users and teams from the per-org counters
-- kept by triggers, deactivated users from a partial index that holds only them,
-- memberships from PostgreSQL's live-row statistic (approximate), tokens and sync
-- jobs from their small tables. Each token's current job (sync_jobs) is running
-- when its last request is less than $1 seconds old, and stalled when it is
-- quieter than that with failures not yet resolved (as `jobs` shows them).
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
    SELECT count(*) FILTER (WHERE s.last_at >= now() - make_interval(secs => $1)) AS running,
           count(*) FILTER (
               WHERE s.last_at < now() - make_interval(secs => $1)
                 AND EXISTS (
                     SELECT 1 FROM unresolved_failures u
                     WHERE u.org_id = s.org_id AND u.job_id = s.job_id)
           ) AS stalled
    FROM sync_jobs s
) AS j;

-- name: monitoring_org_state
-- The same per org, for the $1 orgs with the most users (the org label's cap).
WITH top AS (
    SELECT org_id, sum(total)::bigint AS users
    FROM scim_resource_counts
    WHERE resource = 'User'
    GROUP BY org_id
    ORDER BY users DESC, org_id
    LIMIT $1
)
SELECT o.slug,
       top.users,
       (SELECT count(*) FROM scim_users u
         WHERE u.org_id = top.org_id AND u.active IS FALSE) AS users_deactivated,
       coalesce((SELECT sum(g.total) FROM scim_resource_counts g
                  WHERE g.org_id = top.org_id AND g.resource = 'Group'), 0)::bigint AS teams,
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

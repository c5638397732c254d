-- name: signal_request_kinds
-- How Okta changes users and teams since $2 (PUT: App Integration Wizard apps;
-- PATCH: OIN apps), wrong URLs and revoked tokens: from the hourly counts, never
-- from the log itself. Each count is one key looked up in each hour's counts:
-- expanding every key of a month of hours costs tens of times more.
WITH counts AS (
    SELECT sum((h.counts->>'m:PUT User')::int) AS user_puts,
           sum((h.counts->>'m:PATCH User')::int) AS user_patches,
           sum((h.counts->>'m:PUT Group')::int) AS group_puts,
           sum((h.counts->>'m:PATCH Group')::int) AS group_patches,
           sum((h.counts->>'c:wrong_base_url')::int) AS wrong_urls,
           sum((h.counts->>'c:token_revoked')::int) AS revoked_401s
    FROM provisioning_log_hourly h
    WHERE h.org_id = $1 AND h.hour >= date_trunc('hour', $2::timestamptz)
)
SELECT coalesce(user_puts, 0) AS user_puts, coalesce(user_patches, 0) AS user_patches,
       coalesce(group_puts, 0) AS group_puts, coalesce(group_patches, 0) AS group_patches,
       coalesce(wrong_urls, 0) AS wrong_urls, coalesce(revoked_401s, 0) AS revoked_401s,
       (SELECT count(*) FROM (
            SELECT 1 FROM provisioning_log l
            WHERE l.org_id = $1 AND l.code = 'wrong_base_url' AND l.occurred_at >= $2
              AND (l.code_args->>'trailing_slash')::boolean
            LIMIT 10000) AS t) AS trailing_slashes,
       (SELECT count(DISTINCT token_id) FROM (
            SELECT l.token_id FROM provisioning_log l
            WHERE l.org_id = $1 AND l.code = 'token_revoked' AND l.occurred_at >= $2
            ORDER BY l.occurred_at DESC LIMIT 10000) AS r) AS revoked_tokens
FROM counts;

-- name: signal_user_names
-- userNames that look like Okta user ids (00u + 17 characters), userNames that are
-- not emails while the users have emails, and Okta's spec-test users left behind.
-- Read on the org's newest 10,000 users: a format problem shows there, and the
-- signal stays an index range on an org of millions.
SELECT count(*) FILTER (WHERE user_name ~ '^00u[0-9A-Za-z]{17}$') AS okta_ids,
       (array_agg(user_name) FILTER (WHERE user_name ~ '^00u[0-9A-Za-z]{17}$'))[1:3] AS okta_id_examples,
       count(*) FILTER (WHERE position('@' IN user_name) = 0 AND cardinality(emails_ci) > 0) AS not_emails,
       (array_agg(user_name) FILTER (WHERE position('@' IN user_name) = 0 AND cardinality(emails_ci) > 0))[1:3]
           AS not_email_examples,
       count(*) FILTER (WHERE user_name_ci LIKE 'runscope%@atko.com') AS spec_test_users,
       (array_agg(user_name) FILTER (WHERE user_name_ci LIKE 'runscope%@atko.com'))[1:3] AS spec_test_examples,
       count(*) AS users
FROM (SELECT user_name, user_name_ci, emails_ci FROM scim_users
      WHERE org_id = $1 ORDER BY seq DESC LIMIT 10000) AS recent;

-- name: signal_duplicates
-- Users whose userName is another user's email: one person, two accounts
-- (among the org's newest 10,000 users).
SELECT a.id AS user_id, a.user_name, b.id AS other_id, b.user_name AS other_user_name
FROM (SELECT id, org_id, user_name, user_name_ci FROM scim_users
      WHERE org_id = $1 ORDER BY seq DESC LIMIT 10000) AS a
JOIN scim_users b ON b.org_id = a.org_id AND b.id <> a.id AND b.emails_ci @> ARRAY[a.user_name_ci]
LIMIT $2;

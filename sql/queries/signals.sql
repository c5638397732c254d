-- name: signal_request_kinds
-- How Okta changes users and teams since $2: PUT (App Integration Wizard apps) or PATCH (OIN apps).
SELECT count(*) FILTER (WHERE method = 'PUT' AND path LIKE '%/Users/%') AS user_puts,
       count(*) FILTER (WHERE method = 'PATCH' AND path LIKE '%/Users/%') AS user_patches,
       count(*) FILTER (WHERE method = 'PUT' AND path LIKE '%/Groups/%') AS group_puts,
       count(*) FILTER (WHERE method = 'PATCH' AND path LIKE '%/Groups/%') AS group_patches,
       count(*) FILTER (WHERE event = 'Wrong base URL') AS wrong_urls,
       count(*) FILTER (WHERE event = 'Wrong base URL' AND detail LIKE '%ends with a slash%') AS trailing_slashes,
       count(*) FILTER (WHERE auth_failure = 'revoked') AS revoked_401s,
       count(DISTINCT token_id) FILTER (WHERE auth_failure = 'revoked') AS revoked_tokens
FROM provisioning_log
WHERE org_id = $1 AND occurred_at >= $2;

-- name: signal_user_names
-- userNames that look like Okta user ids (00u + 17 characters), userNames that are
-- not emails while the users have emails, and Okta's spec-test users left behind.
SELECT count(*) FILTER (WHERE user_name ~ '^00u[0-9A-Za-z]{17}$') AS okta_ids,
       (array_agg(user_name) FILTER (WHERE user_name ~ '^00u[0-9A-Za-z]{17}$'))[1:3] AS okta_id_examples,
       count(*) FILTER (WHERE position('@' IN user_name) = 0 AND cardinality(emails_ci) > 0) AS not_emails,
       (array_agg(user_name) FILTER (WHERE position('@' IN user_name) = 0 AND cardinality(emails_ci) > 0))[1:3]
           AS not_email_examples,
       count(*) FILTER (WHERE user_name_ci LIKE 'runscope%@atko.com') AS spec_test_users,
       (array_agg(user_name) FILTER (WHERE user_name_ci LIKE 'runscope%@atko.com'))[1:3] AS spec_test_examples,
       count(*) AS users
FROM scim_users
WHERE org_id = $1;

-- name: signal_duplicates
-- Users whose userName is another user's email: one person, two accounts.
SELECT a.id AS user_id, a.user_name, b.id AS other_id, b.user_name AS other_user_name
FROM scim_users a
JOIN scim_users b ON b.org_id = a.org_id AND b.id <> a.id AND b.emails_ci @> ARRAY[a.user_name_ci]
WHERE a.org_id = $1
LIMIT $2;

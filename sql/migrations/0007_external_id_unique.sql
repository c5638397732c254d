-- Why: Okta and Entra identify a user by externalId; two users of one org with the
-- same externalId make every later lookup ambiguous. 100 concurrent create pairs
-- with one externalId and different userNames all succeeded. A unique index
-- decides the race (one 201, one 409); users without an externalId (NULL, or
-- the empty string some clients send for "none") are not constrained.
--
-- Users already sharing an externalId keep it on the oldest one; the others lose
-- it (their next Okta update sets it again, or answers 409 naming the holder).

WITH ranked AS (
    SELECT org_id, id,
           row_number() OVER (PARTITION BY org_id, external_id ORDER BY seq) AS n
    FROM scim_users
    WHERE external_id <> ''
)
UPDATE scim_users u
SET external_id = NULL,
    attrs = u.attrs - 'externalId',
    attrs_ci = u.attrs_ci - 'externalId',
    version = u.version + 1
FROM ranked r
WHERE r.n > 1 AND u.org_id = r.org_id AND u.id = r.id;

DROP INDEX scim_users_external_id;
CREATE UNIQUE INDEX scim_users_external_id_key ON scim_users (org_id, external_id)
    WHERE external_id <> '';

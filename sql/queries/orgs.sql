-- name: insert_org
-- A new org; the slug is what admins and the CLI call it.
INSERT INTO orgs (slug, name) VALUES ($1, $2)
RETURNING id, slug, name, created_at;

-- name: get_org_by_slug
SELECT id, slug, name, created_at FROM orgs WHERE slug = $1;

-- name: list_orgs
SELECT o.id, o.slug, o.name, o.created_at,
       (SELECT count(*) FROM scim_tokens t
         WHERE t.org_id = o.id AND t.revoked_at IS NULL
           AND (t.expires_at IS NULL OR t.expires_at > now())) AS active_tokens
FROM orgs o
ORDER BY o.slug;

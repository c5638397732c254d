-- Why: a list page may continue a walk after a remembered position only when that
-- position still lands at the requested startIndex (issue 13). For an unfiltered
-- walk that is proven cheaply when no resource of the type was inserted or deleted
-- since the previous page: `changes` counts both, bumped by the same statement-level
-- triggers (and row update) that keep `total`. Otherwise the page query counts.

ALTER TABLE scim_resource_counts ADD COLUMN changes bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION count_inserted_resources() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO scim_resource_counts (org_id, resource, total, changes)
    SELECT org_id, TG_ARGV[0], count(*), count(*) FROM inserted_rows GROUP BY org_id
    ON CONFLICT (org_id, resource)
        DO UPDATE SET total = scim_resource_counts.total + EXCLUDED.total,
                      changes = scim_resource_counts.changes + EXCLUDED.changes;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION count_deleted_resources() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE scim_resource_counts c
    SET total = c.total - d.n, changes = c.changes + d.n
    FROM (SELECT org_id, count(*) AS n FROM deleted_rows GROUP BY org_id) AS d
    WHERE c.org_id = d.org_id AND c.resource = TG_ARGV[0];
    RETURN NULL;
END
$$;

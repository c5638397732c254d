-- Why: SCIM Groups (SecureCodingHub teams) and their members, one row per member,
-- so adding or removing a member never reads or rewrites the others.

CREATE TABLE scim_groups (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    id uuid NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    display_name text NOT NULL,
    display_name_ci text NOT NULL,
    external_id text,
    attrs jsonb NOT NULL,
    attrs_ci jsonb NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE UNIQUE INDEX scim_groups_display_name_key ON scim_groups (org_id, display_name_ci);
CREATE INDEX scim_groups_external_id ON scim_groups (org_id, external_id);
CREATE INDEX scim_groups_seq ON scim_groups (org_id, seq);

-- The composite foreign keys make a member from another org impossible.
CREATE TABLE scim_group_members (
    org_id uuid NOT NULL,
    group_id uuid NOT NULL,
    user_id uuid NOT NULL,
    -- What the client sent as the member's display (Okta: the username), and folded.
    display text,
    display_ci text,
    PRIMARY KEY (org_id, group_id, user_id),
    FOREIGN KEY (org_id, group_id) REFERENCES scim_groups (org_id, id) ON DELETE CASCADE,
    FOREIGN KEY (org_id, user_id) REFERENCES scim_users (org_id, id) ON DELETE CASCADE
);
CREATE INDEX scim_group_members_user ON scim_group_members (org_id, user_id);

CREATE TRIGGER scim_groups_count_insert AFTER INSERT ON scim_groups
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_inserted_resources('Group');
CREATE TRIGGER scim_groups_count_delete AFTER DELETE ON scim_groups
    REFERENCING OLD TABLE AS deleted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_deleted_resources('Group');

-- A group's members as SCIM renders them, in a stable order.
CREATE FUNCTION group_members_json(p_org uuid, p_group uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
               'value', m.user_id, 'display', m.display)) ORDER BY m.user_id), '[]'::jsonb)
    FROM scim_group_members m
    WHERE m.org_id = p_org AND m.group_id = p_group
$$;

-- A user's groups as SCIM renders them (the read-only User.groups attribute).
CREATE FUNCTION user_groups_json(p_org uuid, p_user uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object('value', g.id, 'display', g.display_name)
               ORDER BY g.seq), '[]'::jsonb)
    FROM scim_group_members m
    JOIN scim_groups g ON g.org_id = m.org_id AND g.id = m.group_id
    WHERE m.org_id = p_org AND m.user_id = p_user
$$;

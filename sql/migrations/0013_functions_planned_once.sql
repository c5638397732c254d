-- Issue 12: two SQL-language functions ran on every request and were parsed and
-- planned again on every call. A SQL function that cannot be inlined into its
-- caller (these hold an aggregate) keeps its plan only while one statement runs;
-- the log row's three counter updates and every read of a user are each a statement
-- of their own. Measured under Okta-shaped load (track_functions): user_groups_json
-- 0.21 ms a call, jsonb_counts_add 0.056 ms a call, three calls per log row. In
-- PL/pgSQL a function's statements are parsed once per connection.

-- A user's teams as [{"value": id, "display": name}], in the teams' creation order.
-- Still planned for its values on every call: a plan kept from when the members
-- table was empty (a new install's first sync pushes teams after the users, before
-- any ANALYZE) would read the whole table for every user.
CREATE OR REPLACE FUNCTION user_groups_json(p_org uuid, p_user uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_agg(jsonb_build_object('value', g.id, 'display', g.display_name)
                   ORDER BY g.seq), '[]'::jsonb)
        FROM scim_group_members m
        JOIN scim_groups g ON g.org_id = m.org_id AND g.id = m.group_id
        WHERE m.org_id = p_org AND m.user_id = p_user
    );
END
$$;

-- counts with 1 added to each key of keys (a missing key counts from 0). Reads no
-- table: its plan holds for any values.
CREATE OR REPLACE FUNCTION jsonb_counts_add(counts jsonb, keys text[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
BEGIN
    FOREACH k IN ARRAY keys LOOP
        counts := jsonb_set(counts, ARRAY[k], to_jsonb(coalesce((counts->>k)::int, 0) + 1));
    END LOOP;
    RETURN counts;
END
$$;

-- The duplicate-account detector's shared-email probe, in a new org (no statistics
-- yet: a first sync runs before any ANALYZE), was planned as the email index ANDed
-- with the org's index entries, which reads every user of the org on every create:
-- a first sync slowed down as it went (10,000 users: 2.2 s per 1,000 at the start,
-- 4.1 s at the end). The email index is read first, fenced off (OFFSET 0) from the
-- org filter: a probe costs the users holding those emails, however large the org.
-- Still planned for its values on every call, as since 0004.
CREATE OR REPLACE FUNCTION with_duplicate_warning(
    entry jsonb, p_org uuid, p_user uuid, p_emails text[]
) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    other record;
    matched text;
    how text;
    note text;
BEGIN
    IF cardinality(p_emails) = 0 OR (entry->>'outcome') = 'failure' THEN
        RETURN entry;
    END IF;
    SELECT u.id, u.user_name, u.user_name_ci AS email INTO other
    FROM scim_users u
    WHERE u.org_id = p_org AND u.user_name_ci = ANY(p_emails) AND u.id <> p_user
    LIMIT 1;
    IF other.id IS NOT NULL THEN
        matched := other.email;
        how := 'userName';
    ELSE
        -- No LIMIT: with one, the planner expects a match within a few hundred rows
        -- and prefers a sequential scan to the email index; INTO keeps the first row.
        SELECT u.id, u.user_name, u.emails_ci INTO other
        FROM (SELECT * FROM scim_users WHERE emails_ci && p_emails OFFSET 0) AS u
        WHERE u.org_id = p_org AND u.id <> p_user;
        IF other.id IS NULL THEN
            RETURN entry;
        END IF;
        SELECT e INTO matched FROM unnest(p_emails) AS e WHERE e = ANY(other.emails_ci) LIMIT 1;
        how := 'email';
    END IF;
    note := 'possible duplicate account: user ' || other.user_name || ' (' || other.id || ') has '
        || matched || ' as its ' || how;
    RETURN entry || jsonb_build_object(
        'notes', coalesce(entry->'notes', '[]'::jsonb) || to_jsonb(note),
        'outcome', 'warning',
        'code', 'duplicate_account',
        'code_args', jsonb_build_object('other_id', other.id, 'other_user_name', other.user_name,
                                        'email', matched, 'matched_as', how),
        'event_detail', note);
END
$$;

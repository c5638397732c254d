-- Why (1): keyset paging across processes and replicas (issue 12). An Okta import
-- walks /Users with startIndex 1, 101, 201, …; the page query continues after the
-- last row of the previous page instead of counting past every earlier row with
-- OFFSET. That position used to live in the memory of the process that served
-- the previous page, so with several workers or replicas most pages fell back to
-- OFFSET. Now the page statement itself notes it here (a data-modifying CTE, no
-- extra round trip) and the next page's statement reads it, whichever process
-- serves it. An entry is a candidate, never trusted: the page query uses it only
-- if it still lands at that startIndex (see sql/queries/paging.sql and list_users), so a stale or foreign
-- entry costs an OFFSET, never a wrong page. Entries expire after 15 minutes
-- (the default below, refreshed on every write); the advisory-locked upkeep
-- deletes expired ones.
CREATE TABLE scim_page_positions (
    org_id uuid NOT NULL,
    -- The walk: SHA-256 of its resource type and filter text (gateway.scim.listing).
    walk bytea NOT NULL CHECK (length(walk) = 32),
    -- The startIndex of the page this position precedes.
    start_index bigint NOT NULL,
    -- The last row served before it, in the walk's (seq) order.
    seq bigint NOT NULL,
    -- The org's inserts and deletes of the type when it was served (scim_resource_counts);
    -- null for a filtered walk, whose page query counts instead.
    changes bigint,
    expires_at timestamptz NOT NULL DEFAULT now() + interval '15 minutes',
    PRIMARY KEY (org_id, walk, start_index)
);
CREATE INDEX scim_page_positions_expires ON scim_page_positions (expires_at);

-- Why: the metrics scrape reports deactivated users without counting the users
-- table. Only deactivated users are in this index, so counting them reads as many
-- index entries as there are deactivated users, and creates and updates of active
-- users never touch it.
CREATE INDEX scim_users_deactivated ON scim_users (org_id) WHERE active IS FALSE;

-- Why: a placeholder on branch issue-12s only. Number 0010 belongs to the lead's
-- part of issue 12 (round trips, counters, plans); migration numbers must run
-- without gaps, so this empty step lets 0011 apply here. Delete this file when
-- merging: the lead's 0010 takes its place.
SELECT 1;

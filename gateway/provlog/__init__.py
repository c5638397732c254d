"""The provisioning log as a domain of its own.

- `entry`: what is known about a request as it is served (plain data) and its row.
- `events`: the event, outcome and target of a row, in the words of Okta's admin.
- `codes`: stable reason codes for failures and warnings, with their descriptions.
- `guidance`: what happened, what Okta does next and what to fix, chosen by code.
- `redaction`: secrets out of what is stored; characters PostgreSQL cannot store escaped.
- `signals`: per-org misconfiguration read from the log and the data.
- `spool`: rows that cannot be written now, kept on disk and replayed in order.
- `batch`: rows of shed requests, queued and written many to a statement.
- `upkeep`: partitions ahead, retention behind, spool replay.
"""

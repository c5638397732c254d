"""Caps on what one SCIM request may carry, so that every accepted body costs little.

Each is documented in the README ("Limits") and answered with a SCIM 400 that
names the cap. Together with `SCIM_MAX_BODY_BYTES` they keep the work of a
request linear in its size and small enough not to stall the event loop.
"""

from __future__ import annotations

# Keys in one JSON object. A User with every core and enterprise attribute has
# about 30; Okta custom attributes arrive as extension keys.
MAX_OBJECT_KEYS = 256
# Strings stored in an index (userName, externalId, User and Group displayName,
# emails.value): PostgreSQL rejects a btree entry over 2,704 bytes, and folded
# Unicode can grow threefold. RFC 5321 caps an email address at 254.
MAX_INDEXED_STRING = 256
# Every other string attribute.
MAX_STRING = 8192
# Operations in one PATCH.
MAX_OPERATIONS = 1000
# Attributes one PATCH names, all operations together: each path, and each key of
# a path-less value (Okta's {"op": "replace", "value": {"active": false}} names
# one). Each costs a path parse, tens of microseconds; without this cap 1,000
# operations of 256 keys each would cost seconds.
MAX_PATCH_PATHS = 1000
# Characters of all PATCH paths together: parsing one costs about 7 microseconds a
# character. 1,000 of Okta's `members[value eq "<id>"]` removals take 55,000.
MAX_PATCH_PATH_CHARACTERS = 64 * 1024
# Members in one request (a group POST/PUT, or all PATCH operations together).
# Okta's AIW sends the whole team in a PUT; 100,000 members fit in about 9 MiB.
MAX_MEMBERS = 100_000
# A filter (query parameter or .search body).
MAX_FILTER_LENGTH = 4096
# startIndex beyond this is certainly past the end; PostgreSQL's OFFSET is a bigint.
MAX_START_INDEX = 2**31 - 1

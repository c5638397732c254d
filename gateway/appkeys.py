"""Every `web.AppKey` and `web.RequestKey` of the gateway, in one place."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from gateway.admission import Admission
from gateway.dbstate import DatabaseState
from gateway.logentry import LogEntry
from gateway.metrics import Metrics
from gateway.paging import PageCursors
from gateway.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
# Whether the database schema was checked and whether the process is draining.
DB_STATE = web.AppKey("db_state", DatabaseState)
# Per-token rate limits and per-org connection shares of the SCIM app.
ADMISSION = web.AppKey("admission", Admission)
METRICS = web.AppKey("metrics", Metrics)
# The SCIM sub-app, for reversing its URLs from the root app.
SCIM_APP = web.AppKey("scim_app", web.Application)
# Keyset positions of list walks in progress (see PageCursors).
PAGE_CURSORS = web.AppKey("page_cursors", PageCursors)

# Set when the connection must close after the response (a stalled body).
CLOSE_CONNECTION = web.RequestKey("close_connection", bool)

# The provisioning-log entry of the SCIM request being served.
LOG_ENTRY = web.RequestKey("log_entry", LogEntry)

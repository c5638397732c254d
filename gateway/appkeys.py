"""Every `web.AppKey` and `web.RequestKey` of the gateway, in one place."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from dashboard.live import LiveLog
from gateway.logentry import LogEntry
from gateway.metrics import Metrics
from gateway.paging import PageCursors
from gateway.settings import Settings
from gateway.store.admins import Session

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
METRICS = web.AppKey("metrics", Metrics)
# The SCIM sub-app, for reversing its URLs from the root app.
SCIM_APP = web.AppKey("scim_app", web.Application)
# The dashboard sub-app, for reversing its URLs from the root app.
DASHBOARD_APP = web.AppKey("dashboard_app", web.Application)
# The dashboard's live log: one poller per process, shared by all open pages.
LIVE_LOG = web.AppKey("live_log", LiveLog)
# Keyset positions of list walks in progress (see PageCursors).
PAGE_CURSORS = web.AppKey("page_cursors", PageCursors)

# The provisioning-log entry of the SCIM request being served.
LOG_ENTRY = web.RequestKey("log_entry", LogEntry)

# The signed-in admin's dashboard session; absent on the sign-in and setup pages.
DASHBOARD_SESSION = web.RequestKey("dashboard_session", Session)

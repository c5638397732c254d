"""Every `web.AppKey` and `web.RequestKey` of the gateway, in one place."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from gateway.logentry import LogEntry
from gateway.metrics import Metrics
from gateway.paging import PageCursors
from gateway.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
METRICS = web.AppKey("metrics", Metrics)
# The SCIM sub-app, for reversing its URLs from the root app.
SCIM_APP = web.AppKey("scim_app", web.Application)
# A sub-app's name in the request metrics' `app` label ("scim", "dashboard").
APP_NAME = web.AppKey("app_name", str)
# Keyset positions of list walks in progress (see PageCursors).
PAGE_CURSORS = web.AppKey("page_cursors", PageCursors)

# The provisioning-log entry of the SCIM request being served.
LOG_ENTRY = web.RequestKey("log_entry", LogEntry)

"""Every `web.AppKey` and `web.RequestKey` of the gateway, in one place.

A leaf: it imports the types it names only for the type checker, so any module
may import it without pulling in the rest of the gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import asyncpg

    from dashboard.live import LiveLog
    from gateway.admission import Admission
    from gateway.dbstate import DatabaseState
    from gateway.metrics import Metrics
    from gateway.provlog.batch import LogBatch
    from gateway.provlog.entry import LogEntry
    from gateway.provlog.spool import LogSpool
    from gateway.scim.context import ScimContext
    from gateway.scim.tokencache import TokenCache
    from gateway.settings import Settings
    from gateway.store.admins import Session

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DB_POOL: web.AppKey[asyncpg.Pool] = web.AppKey("db_pool")
# The dashboard's read-only pages read through this pool: on DATABASE_READ_URL (a
# replica) when set, else the same pool as DB_POOL. Writes always use DB_POOL.
DB_READ_POOL: web.AppKey[asyncpg.Pool] = web.AppKey("db_read_pool")
# Whether the database schema was checked and whether the process is draining.
DB_STATE: web.AppKey[DatabaseState] = web.AppKey("db_state")
# Per-token rate limits and per-org connection shares of the SCIM app.
ADMISSION: web.AppKey[Admission] = web.AppKey("admission")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
# The SCIM sub-app, for reversing its URLs from the root app.
SCIM_APP: web.AppKey[web.Application] = web.AppKey("scim_app")
# A sub-app's name in the request metrics' `app` label ("scim", "dashboard").
APP_NAME: web.AppKey[str] = web.AppKey("app_name")
# The dashboard sub-app, for reversing its URLs from the root app.
DASHBOARD_APP: web.AppKey[web.Application] = web.AppKey("dashboard_app")
# The dashboard's live log: one poller per process, shared by all open pages.
LIVE_LOG: web.AppKey[LiveLog] = web.AppKey("live_log")
# Provisioning-log rows kept on disk while the database is away.
LOG_SPOOL: web.AppKey[LogSpool] = web.AppKey("log_spool")
# Log rows of shed requests, queued and written many to a statement.
LOG_BATCH: web.AppKey[LogBatch] = web.AppKey("log_batch")

# What each SCIM token authenticated as, reused for under a second (see TokenCache).
TOKEN_CACHE: web.AppKey[TokenCache] = web.AppKey("token_cache")

# Set when the connection must close after the response (a stalled body).
CLOSE_CONNECTION: web.RequestKey[bool] = web.RequestKey("close_connection")

# The provisioning-log entry of the SCIM request being served.
LOG_ENTRY: web.RequestKey[LogEntry] = web.RequestKey("log_entry")
# The SCIM request's connection, org and log state.
SCIM_CONTEXT: web.RequestKey[ScimContext] = web.RequestKey("scim_context")
# The signed-in admin's dashboard session; absent on the sign-in and setup pages.
DASHBOARD_SESSION: web.RequestKey[Session] = web.RequestKey("dashboard_session")

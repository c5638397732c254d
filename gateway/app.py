"""The application factory: one `create_app(settings)`, no module state."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from dashboard.app import DASHBOARD_PREFIX, create_dashboard_app, live_log_ctx
from dashboard.live import LiveLog
from gateway.admission import Admission, ConnectionShares, RateLimiter
from gateway.appkeys import (
    ADMISSION,
    APP_NAME,
    CLOSE_CONNECTION,
    DASHBOARD_APP,
    DB_STATE,
    LIVE_LOG,
    METRICS,
    SCIM_APP,
    SETTINGS,
    TOKEN_CACHE,
)
from gateway.db import pool_ctx, read_pool_ctx
from gateway.dbstate import DatabaseState
from gateway.health import healthz, readyz
from gateway.metrics import Metrics
from gateway.monitoring import (
    metrics_listener_ctx,
    metrics_on_main_port,
    metrics_sampler_ctx,
    request_metrics_middleware,
)
from gateway.provlog.batch import log_batch_ctx
from gateway.provlog.upkeep import log_maintenance_ctx, log_spool_ctx
from gateway.scim.app import create_scim_app, serve_unmatched
from gateway.scim.tokencache import TokenCache
from gateway.settings import Settings


@web.middleware
async def close_connection_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Close the connection after responding when a handler says so (a stalled body)."""
    response = await handler(request)
    if request.get(CLOSE_CONNECTION):
        response.force_close()
    return response


@web.middleware
async def unmatched_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # A miss under a sub-app passes through that sub-app's own middlewares; a miss
    # outside every sub-app only reaches here.
    if (
        isinstance(request.match_info.http_exception, web.HTTPNotFound)
        and len(request.match_info.apps) == 1
    ):
        return await serve_unmatched(request, handler)
    return await handler(request)


async def root_redirect(request: web.Request) -> web.StreamResponse:
    """`/` in a browser opens the dashboard. Anything else there (a token, another
    method) is a SCIM client on a wrong base URL: the SCIM 404, its log row and help."""
    if request.method in ("GET", "HEAD") and "Authorization" not in request.headers:
        raise web.HTTPFound(f"{DASHBOARD_PREFIX}/")
    return await serve_unmatched(request, _not_found)


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound()


def create_app(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    extend_scim: Callable[[web.Application], None] | None = None,
) -> web.Application:
    """Build the gateway. `extend_scim` adds routes to the SCIM sub-app before it is mounted."""
    app = web.Application(
        middlewares=[request_metrics_middleware, close_connection_middleware, unmatched_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[DB_STATE] = DatabaseState()
    app[ADMISSION] = Admission(
        rates=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        shares=ConnectionShares(
            share=settings.org_connection_share,
            wait=settings.db_acquire_timeout,
            max_queued=settings.max_queued_requests,
        ),
    )
    app[METRICS] = metrics or Metrics(
        multiprocess_dir=settings.metrics_multiproc_dir,
        org_label_limit=settings.metrics_org_limit,
    )
    app[TOKEN_CACHE] = TokenCache(settings.auth_cache_seconds)
    app.cleanup_ctx.append(pool_ctx)
    app.cleanup_ctx.append(read_pool_ctx)
    app.cleanup_ctx.append(log_maintenance_ctx)
    app.cleanup_ctx.append(metrics_sampler_ctx)
    app.cleanup_ctx.append(metrics_listener_ctx)
    app.cleanup_ctx.append(log_spool_ctx)
    app.cleanup_ctx.append(log_batch_ctx)
    app[LIVE_LOG] = LiveLog()
    app.cleanup_ctx.append(live_log_ctx)
    app[SCIM_APP] = create_scim_app()
    app[SCIM_APP][APP_NAME] = "scim"
    if extend_scim is not None:
        extend_scim(app[SCIM_APP])
    app.add_subapp(settings.scim_base_path, app[SCIM_APP])
    app[DASHBOARD_APP] = create_dashboard_app()
    app[DASHBOARD_APP][APP_NAME] = "dashboard"
    app.add_subapp(DASHBOARD_PREFIX, app[DASHBOARD_APP])
    app.router.add_route("*", "/", root_redirect)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/metrics", metrics_on_main_port, allow_head=False)
    return app

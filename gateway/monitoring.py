"""Metrics on the root application: every request counted, /metrics served and protected,
process and pool gauges sampled in the background.

`/metrics` answers without credentials only on its own listener, `METRICS_LISTEN`
(default 127.0.0.1:9464, loopback). On the main port it answers only when
`METRICS_TOKEN` is set, and then only to `Authorization: Bearer <METRICS_TOKEN>`:
behind a reverse proxy every request may come from loopback, so the main port
never trusts the peer address. With a token set, the listener asks for it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.appkeys import APP_NAME, DB_POOL, LOG_ENTRY, METRICS, SETTINGS
from gateway.metrics import NO_ORG, OTHER_ORGS, Metrics, StateSnapshot
from gateway.store import monitoring as monitoring_store

logger = logging.getLogger(__name__)

ROOT_APP = "root"
UNMATCHED_ROUTE = "unmatched"
SAMPLE_SECONDS = 1.0
READINESS_EVERY_SAMPLES = 5
STATE_TIMEOUT_SECONDS = 5.0
# InternalClientError: asyncpg's protocol state after a backend was terminated
# under a connection in use; for a scrape, the database did not answer.
_DB_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def _route_of(request: web.Request) -> tuple[str, str]:
    """(sub-app name, route template) of a request: bounded, never the path itself."""
    match_info = request.match_info
    resource = match_info.route.resource
    apps = match_info.apps
    app_name = apps[-1].get(APP_NAME, ROOT_APP) if apps else ROOT_APP
    if resource is None:
        return app_name, UNMATCHED_ROUTE
    return app_name, resource.canonical


async def _org_label(request: web.Request, metrics: Metrics) -> str:
    entry = request.get(LOG_ENTRY)
    org_id = entry.org_id if entry is not None else None
    label = metrics.org_label(org_id)
    if label is not None:
        return label
    assert org_id is not None
    try:
        async with asyncio.timeout(STATE_TIMEOUT_SECONDS):
            async with request.config_dict[DB_POOL].acquire() as conn:
                slug = await monitoring_store.org_slug(conn, org_id)
    except _DB_ERRORS:
        return NO_ORG
    return metrics.remember_org(org_id, slug)


@web.middleware
async def request_metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count and time every request of every sub-app, at the root, outermost."""
    metrics = request.config_dict[METRICS]
    app_name, route = _route_of(request)
    started = time.perf_counter()
    in_flight = metrics.requests_in_flight.labels(app=app_name)
    in_flight.inc()
    scope, scope_token = metrics.open_request_scope()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        in_flight.dec()
        org = NO_ORG
        if metrics.org_label_limit is not None:
            org = await _org_label(request, metrics)
        metrics.close_request_scope(scope, scope_token, org)
        metrics.observe_request(
            app=app_name,
            route=route,
            method=request.method,
            status=status,
            seconds=time.perf_counter() - started,
            org=org,
        )


async def read_state(app: web.Application) -> StateSnapshot:
    """The database's state for a scrape; `up=False` when the database does not answer."""
    limit = app[METRICS].org_label_limit
    try:
        async with asyncio.timeout(STATE_TIMEOUT_SECONDS):
            async with app[DB_POOL].acquire() as conn:
                fleet = await monitoring_store.fleet_state(conn)
                orgs = await monitoring_store.org_states(conn, limit) if limit else []
    except _DB_ERRORS:
        logger.warning("metrics: the database did not answer the state query", exc_info=True)
        return StateSnapshot(up=False)

    def by_org(total: int, per_org: dict[str, int]) -> dict[str, int]:
        if limit is None:
            return {NO_ORG: total}
        rest = total - sum(per_org.values())
        return {**per_org, OTHER_ORGS: rest} if rest else per_org

    return StateSnapshot(
        up=True,
        users_active=by_org(
            fleet.users - fleet.users_deactivated,
            {o.slug: o.users - o.users_deactivated for o in orgs},
        ),
        users_deactivated=by_org(
            fleet.users_deactivated, {o.slug: o.users_deactivated for o in orgs}
        ),
        teams=by_org(fleet.teams, {o.slug: o.teams for o in orgs}),
        memberships=fleet.memberships,
        tokens_active=by_org(fleet.tokens_active, {o.slug: o.tokens_active for o in orgs}),
        token_soonest_expiry_seconds=fleet.token_expiry_seconds,
        seconds_since_last_request=fleet.seconds_since_last_request,
        jobs_running=fleet.jobs_running,
        jobs_stalled=fleet.jobs_stalled,
    )


async def _scrape(app: web.Application) -> web.Response:
    body = app[METRICS].exposition(await read_state(app))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _bearer_ok(request: web.Request, token: str) -> bool:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    )


def _unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text="/metrics needs Authorization: Bearer <METRICS_TOKEN>\n",
        headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
    )


async def metrics_on_main_port(request: web.Request) -> web.Response:
    token = request.app[SETTINGS].metrics_token
    if token is None:
        return web.Response(
            status=404,
            text="Metrics are not served on this port: scrape METRICS_LISTEN "
            "(default 127.0.0.1:9464), or set METRICS_TOKEN to scrape here with "
            "Authorization: Bearer <METRICS_TOKEN>.\n",
        )
    if not _bearer_ok(request, token):
        return _unauthorized()
    return await _scrape(request.app)


def _listener_app(gateway: web.Application) -> web.Application:
    token = gateway[SETTINGS].metrics_token

    async def metrics(request: web.Request) -> web.Response:
        if token is not None and not _bearer_ok(request, token):
            return _unauthorized()
        return await _scrape(gateway)

    listener = web.Application()
    listener.router.add_get("/metrics", metrics, allow_head=False)
    return listener


async def metrics_listener_ctx(app: web.Application) -> AsyncIterator[None]:
    """Serve /metrics on `METRICS_LISTEN`, beside the main port, while the app runs."""
    settings = app[SETTINGS]
    if settings.metrics_listen is None:
        yield
        return
    host, port = settings.metrics_listen
    runner = web.AppRunner(_listener_app(app), access_log=None)
    await runner.setup()
    # Every worker of `serve --workers N` listens on the same address; any one of
    # them answers a scrape with the sum over all.
    site = web.TCPSite(runner, host, port, reuse_port=settings.metrics_multiproc_dir is not None)
    await site.start()
    yield
    await runner.cleanup()


async def _check_ready(app: web.Application) -> bool:
    try:
        async with asyncio.timeout(2):
            async with app[DB_POOL].acquire() as conn:
                await monitoring_store.ping(conn)
    except _DB_ERRORS:
        return False
    return True


async def metrics_sampler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sample the pool, readiness and event-loop lag into this worker's gauges."""
    metrics, pool = app[METRICS], app[DB_POOL]
    loop = asyncio.get_running_loop()

    async def sample() -> None:
        samples = 0
        while True:
            due = loop.time() + SAMPLE_SECONDS
            await asyncio.sleep(SAMPLE_SECONDS)
            metrics.event_loop_lag.set(max(0.0, loop.time() - due))
            size = pool.get_size()
            metrics.pool_size.set(size)
            metrics.pool_in_use.set(size - pool.get_idle_size())
            metrics.pool_max.set(pool.get_max_size())
            if samples % READINESS_EVERY_SAMPLES == 0:
                metrics.ready.set(1 if await _check_ready(app) else 0)
            samples += 1

    metrics.ready.set(1 if await _check_ready(app) else 0)
    metrics.pool_max.set(pool.get_max_size())
    task = asyncio.create_task(sample())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    metrics.ready.set(0)

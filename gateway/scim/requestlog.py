"""The provisioning-log row of every SCIM request: no answered request without its row.

A change writes its row in its own statement (`gateway.scim.context.logged_change`);
every other request gets its row here, after the response is built. When the
row cannot be written on the request's connection it is tried once on a fresh
one, and when the database is away it is spooled to local disk and replayed later
(`gateway.provlog.spool`). A shed request's row is queued and written with others
(`gateway.provlog.batch`). The metrics count the row as stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.appkeys import DB_POOL, LOG_BATCH, LOG_SPOOL, METRICS, SETTINGS
from gateway.scim.context import (
    CLIENT_CLOSED_DETAIL,
    CONNECTION_ERRORS,
    REQUEST_ID_HEADER,
    ScimContext,
    start_context,
)
from gateway.store.provisioning_log import LogRow, Recorded, log_json, record_json

logger = logging.getLogger(__name__)

# How long the log write may wait for a fresh connection before the row is spooled.
_FRESH_CONNECTION_SECONDS = 2.0
# A request answered so without ever taking a connection was shed (rate, capacity,
# a stalled body): its row is queued and written with others (gateway.provlog.batch),
# so shedding takes no connection from the requests being served.
_SHED_STATUSES = frozenset({408, 429, 503})


async def _write_row(request: web.Request, context: ScimContext, row: LogRow) -> Recorded:
    text = log_json(row)
    context.event = row.event
    metrics = request.config_dict[METRICS]
    if context.conn is None and row.status in _SHED_STATUSES:
        if not request.config_dict[LOG_BATCH].add(text):
            metrics.log_rows_spooled.inc()
        return Recorded(row.outcome, row.code)  # stored as described, a moment later
    started = time.perf_counter()
    if context.conn is not None:
        try:
            recorded = await record_json(context.conn, text)
            metrics.log_write_seconds.observe(time.perf_counter() - started)
            return recorded
        except CONNECTION_ERRORS:
            logger.warning(
                "Provisioning-log write for %s failed; trying a new connection", row.request_id
            )
    pool = request.config_dict[DB_POOL]
    try:
        async with pool.acquire(timeout=_FRESH_CONNECTION_SECONDS) as conn:
            recorded = await record_json(conn, text)
        metrics.log_write_seconds.observe(time.perf_counter() - started)
        return recorded
    except (TimeoutError, *CONNECTION_ERRORS):
        request.config_dict[LOG_SPOOL].append(text)
        metrics.log_rows_spooled.inc()
        logger.warning("Database unavailable: provisioning-log row %s spooled", row.request_id)
        # Counted as described: the row is stored as it is, later.
        return Recorded(row.outcome, row.code)


async def _log_client_closed(request: web.Request, context: ScimContext) -> None:
    entry = context.entry
    entry.fail("client_closed", None, scim_type=None, detail=CLIENT_CLOSED_DETAIL)
    settings = request.config_dict[SETTINGS]
    context.conn = None  # the request's connection was mid-statement: use a fresh one
    row = entry.to_row(499, None, settings.log_body_limit)
    with contextlib.suppress(Exception):
        recorded = await _write_row(request, context, row)
        request.config_dict[METRICS].record_log_row(row.event, recorded.outcome, recorded.code)


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    context = start_context(request)
    entry = context.entry
    settings = request.config_dict[SETTINGS]
    metrics = request.config_dict[METRICS]
    try:
        async with context.exit_stack:
            try:
                response = await handler(request)
            except asyncio.CancelledError:
                # aiohttp cancels the handler when the client hangs up: log it as such.
                if request.transport is None or request.transport.is_closing():
                    await asyncio.shield(_log_client_closed(request, context))
                raise
            response.headers[REQUEST_ID_HEADER] = entry.request_id
            if context.recorded is None:
                body = response.body if isinstance(response, web.Response) else None
                row: LogRow = entry.to_row(
                    response.status,
                    body if isinstance(body, bytes) else None,
                    settings.log_body_limit,
                )
                try:
                    context.recorded = await _write_row(request, context, row)
                except Exception:
                    # Not a connection problem (those spool): a row the database refuses.
                    metrics.log_write_failures.inc()
                    logger.exception(
                        "Could not write the provisioning-log row for %s", entry.request_id
                    )
    except CONNECTION_ERRORS:
        # Releasing a broken connection to the pool failed: the row is written or spooled.
        logger.warning("Released a broken connection after request %s", entry.request_id)
    if context.recorded is not None and context.event is not None:
        metrics.record_log_row(context.event, context.recorded.outcome, context.recorded.code)
    # Requests themselves are counted and timed at the root app (gateway.monitoring).
    return response

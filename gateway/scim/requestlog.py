"""The provisioning-log row of every SCIM request, and the connection it is served on.

Each request gets one pooled connection, taken lazily: authentication, the
handler and the log row share it. A handler that changes data writes the log row
itself, inside its own transaction (`logged_transaction`), so there is never a
change without its row nor a success row for a change that rolled back. For every
other request the middleware writes the row after the response is built.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.appkeys import DB_POOL, LOG_ENTRY, METRICS, SETTINGS
from gateway.dbtypes import Connection
from gateway.logentry import LogEntry
from gateway.store.provisioning_log import log_json, record_request

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"


async def request_conn(request: web.Request) -> Connection:
    """The request's pooled connection, acquired on first use and released after the log row."""
    entry = request[LOG_ENTRY]
    if entry.conn is None:
        pool = request.config_dict[DB_POOL]
        entry.conn = conn = await entry.exit_stack.enter_async_context(pool.acquire())
        return conn
    return entry.conn


@asynccontextmanager
async def logged_transaction(request: web.Request) -> AsyncIterator[Connection]:
    """A transaction in which the handler must call `record_in_transaction` before leaving."""
    conn = await request_conn(request)
    entry = request[LOG_ENTRY]
    try:
        async with conn.transaction():
            yield conn
            if not entry.recorded:
                raise RuntimeError("logged_transaction left without record_in_transaction")
    except BaseException:
        # The row rolled back with the change (or the commit failed): the failure
        # response must get a row of its own.
        entry.recorded = False
        raise


async def record_in_transaction(
    request: web.Request, conn: Connection, response: web.Response
) -> None:
    entry = request[LOG_ENTRY]
    settings = request.config_dict[SETTINGS]
    response.headers[REQUEST_ID_HEADER] = entry.request_id
    await record_request(conn, entry.to_row(response, settings.log_body_limit))
    entry.recorded = True


def change_log(request: web.Request, response: web.Response) -> str:
    """The log row to write in the same statement as a change; call `change_recorded` after."""
    entry = request[LOG_ENTRY]
    response.headers[REQUEST_ID_HEADER] = entry.request_id
    return log_json(entry.to_row(response, request.config_dict[SETTINGS].log_body_limit))


def change_recorded(request: web.Request) -> None:
    request[LOG_ENTRY].recorded = True


def request_org(request: web.Request) -> uuid.UUID:
    """The org of an authenticated request: always the token's org."""
    org_id = request[LOG_ENTRY].org_id
    if org_id is None:
        raise RuntimeError("request_org() on an unauthenticated request")
    return org_id


async def _record_after(request: web.Request, response: web.StreamResponse) -> None:
    entry = request[LOG_ENTRY]
    row = entry.to_row(response, request.config_dict[SETTINGS].log_body_limit)
    try:
        await record_request(await request_conn(request), row)
    except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
        # The request's own connection may be the broken part; try a fresh one once.
        logger.warning("Retrying provisioning-log write for %s on a new connection", row.request_id)
        async with request.config_dict[DB_POOL].acquire() as conn:
            await record_request(conn, row)
    entry.recorded = True


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    entry = LogEntry.start(request, request.config_dict[SETTINGS].scim_base_path)
    request[LOG_ENTRY] = entry
    metrics = request.config_dict[METRICS]
    async with entry.exit_stack:
        response = await handler(request)
        response.headers[REQUEST_ID_HEADER] = entry.request_id
        if not entry.recorded:
            try:
                await _record_after(request, response)
            except Exception:
                metrics.log_write_failures.inc()
                logger.exception(
                    "Could not write the provisioning-log row for %s", entry.request_id
                )
    if entry.recorded and entry.described is not None:
        event, outcome = entry.described
        metrics.record_log_row(event, outcome, None)
    return response

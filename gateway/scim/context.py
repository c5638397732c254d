"""The SCIM request's context: its log entry, its org, its pooled connection.

Each request gets one pooled connection, taken lazily: authentication, the handler
and the log row share it. A handler that changes data writes its log row in the
same statement (or transaction) as the change, through `logged_change`; every
other request gets its row from the request-log middleware after the response.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.appkeys import DB_POOL, LOG_ENTRY, SCIM_CONTEXT, SETTINGS
from gateway.dbtypes import Connection
from gateway.provlog.entry import LogEntry
from gateway.provlog.redaction import redact_text
from gateway.scim.errors import ScimError
from gateway.store.provisioning_log import PendingRow, Recorded, log_json, record_request

REQUEST_ID_HEADER = "X-Request-Id"
_MAX_HEADER_TEXT = 512

# The connection broke before or while a statement ran: asyncpg's own "closed"
# errors, the server going away, the socket failing.
CONNECTION_ERRORS = (
    asyncpg.InterfaceError,
    # A protocol left mid-operation by a connection that died under it.
    asyncpg.exceptions.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
    OSError,
)
CONNECTION_OR_TIMEOUT = (*CONNECTION_ERRORS, TimeoutError)


@dataclass(slots=True)
class ScimContext:
    entry: LogEntry
    exit_stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    conn: Connection | None = None
    # The row as stored, once it is: by a change's statement or by the middleware.
    recorded: Recorded | None = None
    # A statement that changes data was sent: the request is not safe to serve again.
    sent_change: bool = False
    # The row's event, as described when the row was built.
    event: str | None = None


def start_context(request: web.Request) -> ScimContext:
    settings = request.config_dict[SETTINGS]
    base_path = settings.scim_base_path
    user_agent = request.headers.get("User-Agent")
    resource = request.match_info.route.resource
    route = None
    if resource is not None and resource.canonical.startswith(base_path):
        route = resource.canonical[len(base_path) :] or "/"
    entry = LogEntry(
        route=route,
        path_id=request.match_info.get("id"),
        query_params={k: v for k, v in request.query.items()},
        request_id=uuid.uuid4().hex,
        started=time.perf_counter(),
        occurred_at=datetime.now(UTC),
        method=request.method,
        path=redact_text(request.path)[:2048],
        query=redact_text(request.query_string)[:4096],
        user_agent=user_agent[:_MAX_HEADER_TEXT] if user_agent else None,
        client_ip=request.remote,
    )
    context = ScimContext(entry)
    request[LOG_ENTRY] = entry
    request[SCIM_CONTEXT] = context
    return context


async def request_conn(request: web.Request) -> Connection:
    """The request's pooled connection, acquired on first use and released after the log row."""
    context = request[SCIM_CONTEXT]
    if context.conn is None:
        pool = request.config_dict[DB_POOL]
        context.conn = await context.exit_stack.enter_async_context(pool.acquire())
    return context.conn


def request_org(request: web.Request) -> uuid.UUID:
    """The org of an authenticated request: always the token's org."""
    org_id = request[LOG_ENTRY].org_id
    if org_id is None:
        raise RuntimeError("request_org() on an unauthenticated request")
    return org_id


class ChangeRow:
    """The log row of a change, written by the statement (or transaction) that makes it."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._pending: list[PendingRow] = []

    def row(self, response: web.Response) -> PendingRow:
        """The row to pass to the store's write; the store notes when it is written."""
        context = self._request[SCIM_CONTEXT]
        context.sent_change = True
        response.headers[REQUEST_ID_HEADER] = context.entry.request_id
        settings = self._request.config_dict[SETTINGS]
        body = response.body if isinstance(response.body, bytes) else None
        row = context.entry.to_row(response.status, body, settings.log_body_limit)
        context.event = row.event
        pending = PendingRow(log_json(row))
        self._pending.append(pending)
        return pending

    async def record(self, conn: Connection, response: web.Response) -> None:
        """Write the row now, inside the caller's transaction (for a body read back first)."""
        context = self._request[SCIM_CONTEXT]
        context.sent_change = True
        response.headers[REQUEST_ID_HEADER] = context.entry.request_id
        settings = self._request.config_dict[SETTINGS]
        body = response.body if isinstance(response.body, bytes) else None
        row = context.entry.to_row(response.status, body, settings.log_body_limit)
        context.event = row.event
        self._pending.append(PendingRow("", await record_request(conn, row)))

    @property
    def recorded(self) -> Recorded | None:
        return next((p.recorded for p in reversed(self._pending) if p.recorded), None)


class ReadRows:
    """The log row of a read that its own statement writes (one round trip).

    The row is made before the statement in each form the answer may take; the
    store writes the one that applies and says how it was stored.
    """

    def __init__(self, request: web.Request) -> None:
        self._request = request

    def row(self, status: int, body: bytes | None, **facts: Any) -> str:
        """The row, as `log_json` text, if the answer is `status` and `body` with `facts`."""
        context = self._request[SCIM_CONTEXT]
        context.entry.facts.update(facts)
        settings = self._request.config_dict[SETTINGS]
        row = context.entry.to_row(status, body, settings.log_body_limit)
        context.event = row.event
        return log_json(row)

    def written(self, recorded: Recorded) -> None:
        self._request[SCIM_CONTEXT].recorded = recorded


@asynccontextmanager
async def logged_change(request: web.Request) -> AsyncIterator[ChangeRow]:
    """Make a change and its log row; the row counts only if the block completes.

    Open any transaction inside this block: a row that rolled back with the change
    (or whose commit failed) is not recorded, and the failure response gets a row
    of its own from the request-log middleware.
    """
    change = ChangeRow(request)
    yield change
    request[SCIM_CONTEXT].recorded = change.recorded


@web.middleware
async def connection_retry_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve a request once more on a new connection if its pooled one was dead.

    Only while no statement that changes data was sent: a connection that died
    between requests (a terminated backend, a restarted server) then costs Okta
    no failure. Reading the body again is free: aiohttp keeps it.
    """
    try:
        return await handler(request)
    except CONNECTION_ERRORS as exc:
        if _client_gone(request):
            raise client_closed() from exc
        context = request[SCIM_CONTEXT]
        if context.sent_change or context.conn is None:
            raise
    context = request[SCIM_CONTEXT]
    # When one pooled connection is dead, the server probably dropped them all
    # (a restart): the pool replaces each on its next acquire.
    await request.config_dict[DB_POOL].expire_connections()
    await _drop_connection(context)
    context.entry.reset_for_retry()
    return await handler(request)


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


CLIENT_CLOSED_DETAIL = (
    "The client closed the connection before the response was sent; if Okta timed out, "
    "it shows this task as failed until Retry Selected."
)


def client_closed() -> ScimError:
    # 499, as nginx logs it: nobody reads this response, the log row is what counts.
    return ScimError(499, CLIENT_CLOSED_DETAIL, code="client_closed")


async def _drop_connection(context: ScimContext) -> None:
    """Give the dead connection back to the pool (which replaces it) and forget it."""
    conn, context.conn = context.conn, None
    if conn is not None:
        with contextlib.suppress(*CONNECTION_OR_TIMEOUT):
            conn.terminate()  # the pool opens a new one on the next acquire
    stack, context.exit_stack = context.exit_stack, AsyncExitStack()
    with contextlib.suppress(*CONNECTION_OR_TIMEOUT):
        await stack.aclose()

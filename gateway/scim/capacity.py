"""What every SCIM request passes before it may take a pooled connection.

In order: the gateway is ready (database schema checked); the
token is within its rate; the whole body has arrived (within the read timeout and
the size cap); the org has a free share of the pool. Only then do authentication
and the handler take a connection, so a client that stalls mid-body holds no
connection, and one org cannot hold them all. Transactions that lose a
serialization or deadlock race are retried here, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.admission import NoCapacity, retry_after
from gateway.appkeys import ADMISSION, CLOSE_CONNECTION, DB_STATE, LOG_ENTRY, SCIM_CONTEXT, SETTINGS
from gateway.db import is_retryable
from gateway.scim.body import check_content_encoding
from gateway.scim.context import request_conn
from gateway.scim.errors import ScimError
from gateway.store import tokens as token_store
from gateway.tokens import AuthFailure, check_authorization

logger = logging.getLogger(__name__)

# Attempts of a request whose transaction lost a serialization or deadlock race.
MAX_ATTEMPTS = 3


def unavailable(request: web.Request, why: str) -> ScimError:
    seconds = request.config_dict[SETTINGS].retry_after_seconds
    return ScimError(
        503,
        f"The service is temporarily unavailable ({why}); retry in {seconds} seconds.",
        headers={"Retry-After": str(seconds)},
    )


async def _read_body(request: web.Request) -> None:
    """Receive the whole body now, so no connection is held while it trickles in."""
    if not request.body_exists:
        return
    check_content_encoding(request)
    settings = request.config_dict[SETTINGS]
    if (request.content_length or 0) > settings.max_body_bytes:
        raise web.HTTPRequestEntityTooLarge(
            max_size=settings.max_body_bytes, actual_size=request.content_length or 0
        )
    try:
        async with asyncio.timeout(settings.body_timeout):
            await request.read()  # kept: later reads return these bytes
    except asyncio.CancelledError:
        # The client hung up mid-body (aiohttp cancels the handler): its log row
        # should still be filed under the token's org, as it was when the
        # connection was taken first.
        transport = request.transport
        if transport is None or transport.is_closing():
            await asyncio.shield(_attribute(request))
        raise
    except TimeoutError:
        request[CLOSE_CONNECTION] = True
        raise ScimError(
            408,
            f"The request body did not arrive within {settings.body_timeout:g} seconds; "
            "the connection is closed.",
        ) from None


async def _attribute(request: web.Request) -> None:
    """Name the org of the request's token on its log entry, without authenticating it."""
    presented = check_authorization(request.headers.get("Authorization"))
    if isinstance(presented, AuthFailure):
        return
    entry = request[LOG_ENTRY]
    with contextlib.suppress(Exception):
        owner = await token_store.token_owner(await request_conn(request), presented)
        if owner is not None:
            entry.org_id, entry.token_id = owner


@web.middleware
async def capacity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # While draining (SIGTERM) requests are still served; only /readyz says 503.
    if not request.config_dict[DB_STATE].ready:
        raise unavailable(request, "the database is not reachable yet")
    admission = request.config_dict[ADMISSION]
    token_key = hashlib.sha256(request.headers.get("Authorization", "").encode()).digest()
    wait = admission.rates.take(token_key)
    if wait > 0:
        limit = request.config_dict[SETTINGS].rate_limit_per_second
        raise ScimError(
            429,
            f"Too many requests with this token (more than {limit:g} per second); retry "
            f"after {retry_after(wait)} seconds.",
            headers={"Retry-After": retry_after(wait)},
        )
    await _read_body(request)
    try:
        async with admission.shares.hold(admission.share_key(token_key)):
            response = await _attempts(request, handler)
    except NoCapacity:
        raise unavailable(request, "every connection this org may use is busy") from None
    org_id = request[LOG_ENTRY].org_id
    if org_id is not None:
        admission.remember(token_key, org_id)
    return response


async def _attempts(request: web.Request, handler: Handler) -> web.StreamResponse:
    context = request[SCIM_CONTEXT]
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await handler(request)
        except Exception as exc:
            # A lost race rolled its transaction back, log row included; a request
            # whose row was written, or that sent a change outside a transaction,
            # is not served again.
            if attempt == MAX_ATTEMPTS or context.recorded is not None or not is_retryable(exc):
                raise
            logger.info(
                "request %s lost a %s race; attempt %d of %d",
                context.entry.request_id,
                type(exc).__name__,
                attempt + 1,
                MAX_ATTEMPTS,
            )
            # What the failed attempt learnt must not leak into the next one's log row.
            context.entry.reset_for_retry()
            context.sent_change = False
            await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)  # noqa: S311
    raise AssertionError("unreachable")  # pragma: no cover

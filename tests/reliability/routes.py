"""Test-only SCIM routes that hold a pooled connection, or fail like a lost race."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.scim.context import request_conn
from gateway.scim.errors import scim_response


class Holder:
    """GET /_test/hold: takes the request's pooled connection and keeps it until released."""

    def __init__(self) -> None:
        self.holding = 0
        self.changed = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request_conn(request)
        self.holding += 1
        self.changed.set()
        await self.release.wait()
        return scim_response({})

    async def until_holding(self, count: int) -> None:
        while self.holding < count:
            self.changed.clear()
            await self.changed.wait()

    def add(self, app: web.Application) -> None:
        app.router.add_get("/_test/hold", self.handle)


class Flaky:
    """GET /_test/flaky: the first `failures` calls raise `error`, as a transaction losing a race does."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error, self.failures, self.calls = error, failures, 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        await request_conn(request)
        if self.calls <= self.failures:
            raise self.error
        return scim_response({"calls": self.calls})

    def add(self, app: web.Application) -> None:
        app.router.add_get("/_test/flaky", self.handle)

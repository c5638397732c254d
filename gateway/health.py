"""Liveness and readiness probes, outside the SCIM base path and unauthenticated."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from gateway.appkeys import DB_POOL, DB_STATE
from gateway.db import is_transient


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.config_dict[DB_STATE]
    if state.draining:
        return web.json_response({"status": "draining"}, status=503)
    if not state.ready:
        return web.json_response({"status": "unavailable", "database": "connecting"}, status=503)
    try:
        async with asyncio.timeout(2):
            async with request.config_dict[DB_POOL].acquire() as conn:
                await conn.fetchval("SELECT 1")
    except Exception as exc:
        if not is_transient(exc) and not isinstance(exc, asyncpg.PostgresError):
            raise
        return web.json_response(
            {"status": "unavailable", "database": type(exc).__name__}, status=503
        )
    return web.json_response({"status": "ok", "database": "ok"})

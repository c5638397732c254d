"""Liveness and readiness probes, outside the SCIM base path and unauthenticated."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from gateway.appkeys import DB_POOL


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(2):
            async with request.config_dict[DB_POOL].acquire() as conn:
                await conn.fetchval("SELECT 1")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return web.json_response(
            {"status": "unavailable", "database": type(exc).__name__}, status=503
        )
    return web.json_response({"status": "ok", "database": "ok"})

"""The asyncpg pool: created in `cleanup_ctx`, one per application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from gateway.appkeys import DB_POOL, SETTINGS
from gateway.dbtypes import Connection
from gateway.migrate import check_schema


async def _no_reset(conn: Connection) -> None:
    """Skip asyncpg's reset query on release.

    The default reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) costs a
    round trip on every release. Pool connections here never take session
    locks, LISTEN, or SET; transactions are always closed by `async with`.
    """


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        reset=_no_reset,
        server_settings={
            "application_name": "scim-gateway",
            # Short statements only; a stuck one must not hold Okta past its 60 s timeout.
            "statement_timeout": "30s",
            # asyncpg prepares every statement; after five runs PostgreSQL may switch to
            # a generic plan that ignores the values, and for skewed data (a team of
            # 100,000 among teams of 10, an email GIN lookup under LIMIT) that plan
            # scans. Planning with the values costs tenths of a millisecond.
            "plan_cache_mode": "force_custom_plan",
        },
    )
    assert pool is not None
    return pool


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.database_url is None:
        raise RuntimeError(
            "create_app needs settings.database_url; the CLI starts the embedded server"
        )
    pool = await create_pool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
    )
    try:
        async with pool.acquire() as conn:
            await check_schema(conn)
    except BaseException:
        await pool.close()
        raise
    app[DB_POOL] = pool
    yield
    try:
        # Bounded: a connection left mid-operation by a dead server must not hang shutdown.
        await asyncio.wait_for(pool.close(), timeout=10)
    except TimeoutError:
        pool.terminate()

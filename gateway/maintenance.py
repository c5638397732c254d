"""Background upkeep of the provisioning log: partitions ahead, retention behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from gateway.appkeys import DB_POOL, SETTINGS
from gateway.store.provisioning_log import drop_expired_partitions, ensure_partitions

logger = logging.getLogger(__name__)
INTERVAL_SECONDS = 3600.0
RETRY_SECONDS = 5.0


async def maintain_log(pool: asyncpg.Pool, retention_days: int) -> tuple[int, int]:
    """Create the coming days' partitions and drop expired ones; (created, dropped)."""
    async with pool.acquire() as conn:
        created = await ensure_partitions(conn)
        dropped = await drop_expired_partitions(conn, retention_days=retention_days)
    if created or dropped:
        logger.info("provisioning log: %d partitions created, %d dropped", created, dropped)
    return created, dropped


async def log_maintenance_ctx(app: web.Application) -> AsyncIterator[None]:
    pool, retention = app[DB_POOL], app[SETTINGS].log_retention_days
    failures = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
    delay = INTERVAL_SECONDS
    try:
        await maintain_log(pool, retention)
    except failures:
        # The gateway starts without its database; upkeep follows once it answers.
        logger.warning("provisioning-log maintenance postponed: the database is not reachable")
        delay = RETRY_SECONDS

    async def every_hour() -> None:
        nonlocal delay
        while True:
            await asyncio.sleep(delay)
            try:
                await maintain_log(pool, retention)
                delay = INTERVAL_SECONDS
            except failures:
                logger.exception("provisioning-log maintenance failed; retrying")

    task = asyncio.create_task(every_hour())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

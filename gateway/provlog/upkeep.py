"""Background upkeep of the provisioning log: partitions ahead, retention behind,
and the replay of rows spooled while the database was away; with it, the
expired paging positions of list walks.

Partition upkeep runs in one process at a time (an advisory lock), so several
workers or replicas starting together do not race on CREATE TABLE; the others
skip it until the next hour. Every process replays spooled rows (each segment
is claimed by one process at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from gateway.appkeys import DB_POOL, LOG_SPOOL, METRICS, SETTINGS
from gateway.provlog.spool import LogSpool
from gateway.store import delete_expired_page_positions
from gateway.store.provisioning_log import (
    drop_expired_partitions,
    ensure_partitions,
    record_json,
    upkeep_lock,
)

logger = logging.getLogger(__name__)
INTERVAL_SECONDS = 3600.0
# Upkeep postponed at start (database away) is tried again this soon.
RETRY_SECONDS = 5.0
# How often the spool is flushed to disk and, when it holds rows, replayed.
SPOOL_TICK_SECONDS = 0.2
REPLAY_EVERY_TICKS = 5

_TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
              asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, TimeoutError)  # fmt: skip


async def maintain_log(pool: asyncpg.Pool, retention_days: int) -> tuple[int, int]:
    """Create the coming days' partitions and drop expired ones; (created, dropped).
    Also forget expired paging positions (scim_page_positions).

    Skipped (0, 0) when another process holds the upkeep lock.
    """
    async with pool.acquire() as conn, upkeep_lock(conn) as mine:
        if not mine:
            logger.info("provisioning-log upkeep: another process holds the lock; skipped")
            return 0, 0
        created = await ensure_partitions(conn)
        dropped = await drop_expired_partitions(conn, retention_days=retention_days)
        forgotten = await delete_expired_page_positions(conn)
    if created or dropped:
        logger.info("provisioning log: %d partitions created, %d dropped", created, dropped)
    if forgotten:
        logger.info("paging: %d expired walk positions forgotten", forgotten)
    return created, dropped


async def replay_spool(pool: asyncpg.Pool, spool: LogSpool) -> int:
    """Write spooled rows, oldest segment first; rows the database refuses are dropped."""

    async def write_batch(rows: list[str]) -> int:
        async with pool.acquire(timeout=2) as conn:
            try:
                async with conn.transaction():
                    for row in rows:
                        await record_json(conn, row)
                return 0
            except asyncpg.DataError:
                pass
            refused = 0
            async with conn.transaction():
                for row in rows:
                    try:
                        async with conn.transaction():
                            await record_json(conn, row)
                    except asyncpg.DataError:
                        refused += 1
                        logger.error("A spooled provisioning-log row was refused; dropped")
            return refused

    return await spool.replay(write_batch)


async def log_spool_ctx(app: web.Application) -> AsyncIterator[None]:
    """The spool, its batched fsync, and replay whenever the database answers."""
    spool = LogSpool(app[SETTINGS].log_spool_dir, max_bytes=app[SETTINGS].log_spool_max_bytes)
    app[LOG_SPOOL] = spool
    metrics = app[METRICS]

    async def tick() -> None:
        ticks = 0
        reported = spool.counts.replayed, spool.counts.dropped
        while True:
            await asyncio.sleep(SPOOL_TICK_SECONDS)
            ticks += 1
            await asyncio.to_thread(spool.flush)
            if ticks % REPLAY_EVERY_TICKS == 0 and spool.pending():
                try:
                    n = await replay_spool(app[DB_POOL], spool)
                    if n:
                        logger.info("provisioning log: %d spooled rows replayed", n)
                except _TRANSIENT:
                    pass  # still away; the rows stay on disk
            replayed, dropped = spool.counts.replayed, spool.counts.dropped
            metrics.log_rows_replayed.inc(replayed - reported[0])
            metrics.log_rows_dropped.inc(dropped - reported[1])
            reported = replayed, dropped

    task = asyncio.create_task(tick())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(*_TRANSIENT):
        await replay_spool(app[DB_POOL], spool)
    spool.close()


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

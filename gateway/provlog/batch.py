"""Provisioning-log rows of shed requests, written many to a statement.

A request the gateway sheds (429, 503 for want of capacity, 408 for a stalled
body) holds no pooled connection, and under overload hundreds arrive a second.
A connection each for their log rows took the pool from the requests being
served (the other org's p99 under 500 simultaneous requests was 1.8 s), and
each shed answer waited for one. Their rows are queued here instead and the
answer goes at once; one task writes them, up to `max_rows` a statement,
through one pooled connection at a time. A row that cannot be written now (the
database away or busy, the queue full) goes to the spool, which replays it
later: every answered request still gets its row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from gateway.appkeys import DB_POOL, LOG_BATCH, LOG_SPOOL, METRICS
from gateway.provlog.spool import LogSpool
from gateway.store.provisioning_log import record_json, record_json_rows

logger = logging.getLogger(__name__)

# How long the writer waits for a pooled connection before it spools a batch.
ACQUIRE_SECONDS = 1.0
# How long shutdown waits for the queue to be written before spooling the rest.
CLOSE_SECONDS = 5.0

_TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
              asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, TimeoutError,
              asyncpg.exceptions.InternalClientError)  # fmt: skip


@dataclass
class LogBatch:
    """The queue of rows (`log_json` texts) to write; see the module docstring."""

    spool: LogSpool
    max_rows: int = 500
    max_bytes: int = 1024 * 1024
    max_queued: int = 20_000
    _rows: deque[str] = field(default_factory=deque)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    # The batch being written: spooled if shutdown has to cut its write short.
    _writing: list[str] = field(default_factory=list)
    _closing: bool = False

    def __post_init__(self) -> None:
        self._idle.set()

    def add(self, row_json: str) -> bool:
        """Queue a row; False when the queue was full and the row was spooled instead."""
        if len(self._rows) >= self.max_queued or self._closing:
            self.spool.append(row_json)
            return False
        self._rows.append(row_json)
        self._idle.clear()
        self._wake.set()
        return True

    async def drained(self) -> None:
        """Wait until every row queued so far is written (or spooled)."""
        await self._idle.wait()

    def _take(self) -> list[str]:
        batch: list[str] = []
        size = 0
        while self._rows and len(batch) < self.max_rows and size < self.max_bytes:
            row = self._rows.popleft()
            batch.append(row)
            size += len(row)
        return batch

    async def run(self, app: web.Application) -> None:
        """Write queued rows until closed and empty."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._rows:
                self._writing = self._take()
                await self._write(app, self._writing)
                self._writing = []
            self._idle.set()
            if self._closing:
                return

    async def _write(self, app: web.Application, rows: list[str]) -> None:
        metrics = app[METRICS]
        try:
            async with app[DB_POOL].acquire(timeout=ACQUIRE_SECONDS) as conn:
                try:
                    await record_json_rows(conn, rows)
                except asyncpg.DataError:
                    # One row the database refuses must not cost the others theirs.
                    for row in rows:
                        try:
                            await record_json(conn, row)
                        except asyncpg.DataError:
                            metrics.log_write_failures.inc()
                            logger.exception("A provisioning-log row was refused; dropped")
        except _TRANSIENT:
            for row in rows:
                self.spool.append(row)
            metrics.log_rows_spooled.inc(len(rows))
            logger.warning("Database unavailable: %d provisioning-log rows spooled", len(rows))

    async def close(self, task: asyncio.Task[None]) -> None:
        """Write what is queued (bounded), then spool whatever is left."""
        self._closing = True
        self._wake.set()
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # Perhaps written already: a row twice is better than a row lost.
            for row in self._writing:
                self.spool.append(row)
        while self._rows:
            self.spool.append(self._rows.popleft())


async def log_batch_ctx(app: web.Application) -> AsyncIterator[None]:
    """The queue of shed requests' rows and its writer (after the pool and the spool)."""
    batch = LogBatch(app[LOG_SPOOL])
    app[LOG_BATCH] = batch
    task = asyncio.create_task(batch.run(app))
    yield
    await batch.close(task)

"""Live log rows: ONE poller per process, shared by every open page.

Pages subscribe per org; each tick the poller asks the store once per org that
has subscribers for rows newer than what it has already sent, and fans them out
to every subscriber's queue. A row written by any worker process or replica is in
PostgreSQL, so every process's poller finds it: no page ever queries by itself.

Rows are read with `provisioning_log.log_tail`, whose cursor never skips a row
that commits late. A page subscribes with the tail cursor taken when it was
rendered; joining an org that is already tailed, its stream first catches up from
that cursor once (pages drop rows they already show).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import asyncpg

from gateway.store import provisioning_log as log_store

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.5
MAX_ROWS_PER_TICK = 500
QUEUE_SIZE = 100


@dataclass
class _OrgTail:
    cursor: log_store.TailCursor
    subscribers: set[asyncio.Queue[list[log_store.LogRow]]] = field(default_factory=set)


class LiveLog:
    """The process's subscriptions and its poller (started by `dashboard.app.live_log_ctx`)."""

    def __init__(self) -> None:
        self._orgs: dict[uuid.UUID, _OrgTail] = {}
        self._wake = asyncio.Event()

    @contextlib.contextmanager
    def subscribe(
        self, org_id: uuid.UUID, cursor: log_store.TailCursor
    ) -> Iterator[tuple[asyncio.Queue[list[log_store.LogRow]], bool]]:
        """A queue of the org's new rows, and whether the caller must first catch up
        from its own cursor (the org was already tailed from a later one)."""
        queue: asyncio.Queue[list[log_store.LogRow]] = asyncio.Queue(QUEUE_SIZE)
        tail = self._orgs.get(org_id)
        catch_up = tail is not None
        if tail is None:
            tail = self._orgs[org_id] = _OrgTail(cursor=cursor)
        tail.subscribers.add(queue)
        self._wake.set()
        try:
            yield queue, catch_up
        finally:
            tail.subscribers.discard(queue)
            if not tail.subscribers and self._orgs.get(org_id) is tail:
                del self._orgs[org_id]

    @property
    def subscriber_count(self) -> int:
        return sum(len(t.subscribers) for t in self._orgs.values())

    async def run(self, pool: asyncpg.Pool) -> None:
        while True:
            if not self._orgs:
                self._wake.clear()
                await self._wake.wait()
            try:
                await self._tick(pool)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("live log poll failed; retrying")
            await asyncio.sleep(TICK_SECONDS)

    async def _tick(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            for org_id, tail in list(self._orgs.items()):
                rows, tail.cursor = await log_store.log_tail(
                    conn, org_id, tail.cursor, limit=MAX_ROWS_PER_TICK
                )
                if not rows:
                    continue
                for queue in list(tail.subscribers):
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(rows)

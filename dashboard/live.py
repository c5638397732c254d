"""Live log rows: ONE poller per process, shared by every open page.

Pages subscribe per org; each tick the poller asks the store once per org that
has subscribers for rows newer than what it has already sent, and fans them out
to every subscriber's queue. A row written by any worker process or replica is in
PostgreSQL, so every process's poller finds it: no page ever queries by itself.

Rows are read with `provisioning_log.list_log` over a short grace window and
deduplicated by id, so a row whose request started before an earlier tick but
committed after it is still sent. The log-core issue is adding a tail-after-cursor
store function that never skips late commits; `_fetch_new` is the one place to
switch to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from gateway.dbtypes import Connection
from gateway.store import provisioning_log as log_store

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.5
# How far back each tick looks again, for rows that commit after a later row's tick.
GRACE = timedelta(seconds=10)
MAX_ROWS_PER_TICK = 500
QUEUE_SIZE = 100


@dataclass
class _OrgTail:
    since: datetime
    subscribers: set[asyncio.Queue[list[log_store.LogRow]]] = field(default_factory=set)
    sent_ids: set[int] = field(default_factory=set)
    sent_order: deque[int] = field(default_factory=deque)

    def remember(self, row_id: int) -> None:
        self.sent_ids.add(row_id)
        self.sent_order.append(row_id)
        while len(self.sent_order) > 5 * MAX_ROWS_PER_TICK:
            self.sent_ids.discard(self.sent_order.popleft())


class LiveLog:
    """The process's subscriptions and its poller (started by `dashboard.app.live_log_ctx`)."""

    def __init__(self) -> None:
        self._orgs: dict[uuid.UUID, _OrgTail] = {}
        self._wake = asyncio.Event()

    @contextlib.contextmanager
    def subscribe(
        self, org_id: uuid.UUID, since: datetime
    ) -> Iterator[asyncio.Queue[list[log_store.LogRow]]]:
        queue: asyncio.Queue[list[log_store.LogRow]] = asyncio.Queue(QUEUE_SIZE)
        tail = self._orgs.get(org_id)
        if tail is None:
            tail = self._orgs[org_id] = _OrgTail(since=since - GRACE)
        else:
            # Rows between this page's render and now may have gone to the others
            # already: send the window again; pages drop rows they show already.
            tail.since = min(tail.since, since - GRACE)
            tail.sent_ids.clear()
            tail.sent_order.clear()
        tail.subscribers.add(queue)
        self._wake.set()
        try:
            yield queue
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
                rows = await _fetch_new(conn, org_id, tail)
                if not rows:
                    continue
                for queue in list(tail.subscribers):
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(rows)


async def _fetch_new(conn: Connection, org_id: uuid.UUID, tail: _OrgTail) -> list[log_store.LogRow]:
    rows, _ = await log_store.list_log(
        conn, org_id, log_store.LogFilter(since=tail.since), limit=MAX_ROWS_PER_TICK
    )
    fresh = [r for r in rows if r.id is not None and r.id not in tail.sent_ids]
    for row in fresh:
        assert row.id is not None
        tail.remember(row.id)
    if rows:
        tail.since = max(tail.since, rows[0].occurred_at - GRACE)
    fresh.reverse()  # oldest first, as they happened
    return fresh

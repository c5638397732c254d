"""Who may use the gateway's capacity now: per-token rate limits and per-org connection shares.

Both are per process, in memory, bounded in size. A token's bucket refills at
`rate` requests per second up to `burst`; an org (or, before its first
authenticated request in this process, a token) holds at most `share`
connections at once, and waits for one at most `wait` seconds. Beyond
`max_queued` waiting requests in all, a request is refused at once: under
overload the gateway sheds instead of queueing for seconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


class NoCapacity(Exception):
    """The org's share of connections stayed taken for the whole wait, or the queue is full."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    rate: float
    burst: int
    max_keys: int = 100_000
    _buckets: OrderedDict[Hashable, _Bucket] = field(default_factory=OrderedDict)

    def take(self, key: Hashable, now: float | None = None) -> float:
        """0 when a request may pass; else the seconds until it could."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(
                float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate
            )
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


@dataclass
class _Share:
    held: int = 0
    # Requests waiting for one of the share's connections, first come first served;
    # a release hands its connection to the first, so one release wakes one waiter.
    waiting: deque[asyncio.Future[None]] = field(default_factory=deque)


@dataclass
class ConnectionShares:
    share: int
    wait: float
    max_queued: int
    _shares: dict[Hashable, _Share] = field(default_factory=dict)
    queued: int = 0

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        entry = self._shares.setdefault(key, _Share())
        if entry.held < self.share and not entry.waiting:
            entry.held += 1
        else:
            await self._wait_for_handover(entry, key)
        try:
            yield
        finally:
            self._release(entry, key)

    async def _wait_for_handover(self, entry: _Share, key: Hashable) -> None:
        """Wait until a release hands this request its connection, at most `wait` seconds."""
        if self.queued >= self.max_queued:
            self._forget_if_idle(entry, key)
            raise NoCapacity
        handover: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry.waiting.append(handover)
        self.queued += 1
        try:
            async with asyncio.timeout(self.wait):
                await handover
        except BaseException as exc:
            if handover.done() and not handover.cancelled():
                # Handed over just as the wait ended: the connection is this request's.
                if isinstance(exc, TimeoutError):
                    return
                self._release(entry, key)
            else:
                handover.cancel()
                entry.waiting.remove(handover)
                self._forget_if_idle(entry, key)
            if isinstance(exc, TimeoutError):
                raise NoCapacity from None
            raise
        finally:
            self.queued -= 1

    def _release(self, entry: _Share, key: Hashable) -> None:
        while entry.waiting:
            handover = entry.waiting.popleft()
            if not handover.done():
                handover.set_result(None)  # the connection passes on: `held` stays
                return
        entry.held -= 1
        self._forget_if_idle(entry, key)

    def _forget_if_idle(self, entry: _Share, key: Hashable) -> None:
        if entry.held == 0 and not entry.waiting:
            self._shares.pop(key, None)

    def held(self, key: Hashable) -> int:
        entry = self._shares.get(key)
        return entry.held if entry else 0


@dataclass
class Admission:
    """The SCIM app's limits, and which org each recently seen token belongs to."""

    rates: RateLimiter
    shares: ConnectionShares
    token_orgs: OrderedDict[bytes, Hashable] = field(default_factory=OrderedDict)
    max_tokens_remembered: int = 10_000

    def share_key(self, token_key: bytes) -> Hashable:
        return self.token_orgs.get(token_key, token_key)

    def remember(self, token_key: bytes, org: Hashable) -> None:
        self.token_orgs[token_key] = org
        self.token_orgs.move_to_end(token_key)
        if len(self.token_orgs) > self.max_tokens_remembered:
            self.token_orgs.popitem(last=False)


def retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))

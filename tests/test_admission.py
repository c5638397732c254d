"""Per-org connection shares: first come first served, bounded waits, nothing leaked."""

from __future__ import annotations

import asyncio

import pytest

from gateway.admission import ConnectionShares, NoCapacity


async def _hold(shares: ConnectionShares, key: str, order: list[int], n: int,
                release: asyncio.Event) -> None:  # fmt: skip
    async with shares.hold(key):
        order.append(n)
        await release.wait()


async def test_waiters_get_the_share_in_arrival_order_one_per_release() -> None:
    shares = ConnectionShares(share=2, wait=5.0, max_queued=100)
    order: list[int] = []
    releases = [asyncio.Event() for _ in range(6)]
    tasks = []
    for n in range(6):
        tasks.append(asyncio.create_task(_hold(shares, "acme", order, n, releases[n])))
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert order == [0, 1]
    assert shares.held("acme") == 2
    assert shares.queued == 4
    releases[1].set()
    await asyncio.sleep(0.01)
    assert order == [0, 1, 2]  # one release, one waiter in
    for n in (0, 2, 3, 4, 5):
        releases[n].set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4, 5]
    assert shares.held("acme") == 0
    assert shares.queued == 0
    assert not shares._shares  # nothing kept for an idle org


async def test_a_wait_past_its_bound_is_no_capacity_and_leaves_no_trace() -> None:
    shares = ConnectionShares(share=1, wait=0.05, max_queued=100)
    release = asyncio.Event()
    holder = asyncio.create_task(_hold(shares, "acme", [], 0, release))
    await asyncio.sleep(0)
    with pytest.raises(NoCapacity):
        async with shares.hold("acme"):
            pass
    assert shares.queued == 0
    # Another org is not held up by acme's.
    async with shares.hold("globex"):
        assert shares.held("globex") == 1
    release.set()
    await holder
    assert not shares._shares


async def test_a_full_queue_refuses_at_once() -> None:
    shares = ConnectionShares(share=1, wait=5.0, max_queued=1)
    release = asyncio.Event()
    holder = asyncio.create_task(_hold(shares, "acme", [], 0, release))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(_hold(shares, "acme", [], 1, release))
    await asyncio.sleep(0)
    with pytest.raises(NoCapacity):
        async with shares.hold("acme"):
            pass
    release.set()
    await asyncio.gather(holder, waiter)
    assert not shares._shares
    assert shares.queued == 0


async def test_a_cancelled_waiter_gives_back_what_it_was_handed() -> None:
    shares = ConnectionShares(share=1, wait=5.0, max_queued=100)
    holding = shares.hold("acme")
    await holding.__aenter__()
    order: list[int] = []
    waiter = asyncio.create_task(_hold(shares, "acme", order, 1, asyncio.Event()))
    await asyncio.sleep(0.01)
    # The release hands the share to the waiter, which is cancelled (its client hung
    # up) before it runs: the share must come back, not leak.
    await holding.__aexit__(None, None, None)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert order == []
    assert shares.held("acme") == 0
    assert not shares._shares
    # And a waiter cancelled while still waiting leaves the queue.
    release2 = asyncio.Event()
    holder = asyncio.create_task(_hold(shares, "acme", [], 2, release2))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(_hold(shares, "acme", order, 3, asyncio.Event()))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert shares.queued == 0
    release2.set()
    await holder
    assert not shares._shares

"""`serve --workers N`: the supervisor hands connections to its workers in turn.

Okta keeps a handful of keep-alive connections for a whole sync. With SO_REUSEPORT
the kernel hashed them to workers, and all 8 of a first sync often landed on one
worker; the supervisor now accepts and deals them out round-robin.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.server import HANDOFF_READY
from gateway.workers import _Dispatcher, _Worker
from tests.conftest import create_database, drop_database
from tests.served import Gateway, Gateways

CONNECTIONS = 8


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _established_to(port: int) -> dict[str, int]:
    """Socket inode -> remote port, of the established TCP connections to `port`."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    found[inode] = int(remote.rsplit(":", 1)[1], 16)
    return found


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


async def _until_serving(gateway: Gateway, workers: int) -> None:
    """Until `workers` worker processes have started serving (each logs it once it
    has told the supervisor it is ready, and only then is dealt connections)."""
    for _ in range(600):
        if gateway.output().count('"serving on ') >= workers:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(gateway.output())


async def _held_after_opening(port: int, pids: list[int]) -> list[int]:
    """Open CONNECTIONS keep-alive connections, each answered; how many each of
    `pids` holds; then they are closed."""
    opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONNECTIONS)]
    for reader, writer in opened:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    connections = _established_to(port)
    held = [len(_socket_inodes(pid) & connections.keys()) for pid in pids]
    for _, writer in opened:
        writer.close()
    return held


@pytest.fixture
async def database(pg_server_url: str) -> AsyncIterator[str]:
    url = await create_database(pg_server_url)
    yield url
    await drop_database(pg_server_url, url)


async def test_connections_are_dealt_to_the_workers_in_turn(database: str, tmp_path: Path) -> None:
    async with Gateways(database, tmp_path) as gateways:
        (gateway,) = await gateways.start(1, workers=2)
        await _until_serving(gateway, 2)
        workers = _children(gateway.process.pid)
        assert len(workers) == 2
        # Every connection is served by a worker (none stays with the supervisor),
        # four each.
        held = await _held_after_opening(gateway.port, [*workers, gateway.process.pid])
        assert held == [CONNECTIONS // 2, CONNECTIONS // 2, 0], held


async def test_a_killed_worker_is_replaced_and_dealt_connections(
    database: str, tmp_path: Path
) -> None:
    async with Gateways(database, tmp_path) as gateways:
        (gateway,) = await gateways.start(1, workers=2)
        await _until_serving(gateway, 2)
        dead, alive = _children(gateway.process.pid)
        os.kill(dead, signal.SIGKILL)
        workers = [dead]
        for _ in range(300):  # the supervisor looks at its workers every 0.2 s
            workers = _children(gateway.process.pid)
            if dead not in workers and len(workers) == 2:
                break
            await asyncio.sleep(0.01)
        (new,) = set(workers) - {alive}
        await _until_serving(gateway, 3)
        held = await _held_after_opening(gateway.port, [alive, new])
        assert held == [CONNECTIONS // 2, CONNECTIONS // 2], held


def _deal(workers: int, ready: set[int], gone: set[int], connections: int) -> list[int]:
    """How many of `connections` each of `workers` fake workers receives from a
    dispatcher, the `ready` ones having said so, the `gone` ones with a closed channel."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    pairs = [socket.socketpair() for _ in range(workers)]
    sleeper = subprocess.Popen(["sleep", "60"])
    dispatcher = _Dispatcher(
        [listener],
        [_Worker(process=sleeper, started=0.0, channel=ours) for ours, _ in pairs],
    )
    try:
        for n, (ours, theirs) in enumerate(pairs):
            ours.setblocking(False)
            if n in ready:
                theirs.send(HANDOFF_READY)
            if n in gone:
                theirs.close()
        dispatcher.wait(0.1)  # hears who is ready
        dispatcher.accept_when_ready(deadline=0.0)  # past: accept whoever is ready
        clients = [socket.create_connection(listener.getsockname()) for _ in range(connections)]
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and dispatcher.turn < connections:
            dispatcher.wait(0.1)
        received = []
        for n, (_, theirs) in enumerate(pairs):
            count = 0
            if n not in gone:
                theirs.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    while True:
                        _, fds, _, _ = socket.recv_fds(theirs, 16, 16)
                        count += len(fds)
                        for fd in fds:
                            os.close(fd)
                theirs.close()
            received.append(count)
        for client in clients:
            client.close()
        return received
    finally:
        sleeper.kill()
        sleeper.wait()
        dispatcher.close()
        listener.close()


def test_connections_wait_until_every_worker_is_ready() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    pairs = [socket.socketpair() for _ in range(2)]
    sleeper = subprocess.Popen(["sleep", "60"])
    dispatcher = _Dispatcher(
        [listener], [_Worker(process=sleeper, started=0.0, channel=ours) for ours, _ in pairs]
    )
    try:
        pairs[0][1].send(HANDOFF_READY)
        dispatcher.wait(0.1)
        dispatcher.accept_when_ready(deadline=time.monotonic() + 60)
        assert not dispatcher.accepting  # one of two is ready
        pairs[1][1].send(HANDOFF_READY)
        dispatcher.wait(0.1)
        dispatcher.accept_when_ready(deadline=time.monotonic() + 60)
        assert dispatcher.accepting
    finally:
        sleeper.kill()
        sleeper.wait()
        dispatcher.close()
        listener.close()
        for _, theirs in pairs:
            theirs.close()


def test_a_worker_is_dealt_connections_once_it_is_ready() -> None:
    assert _deal(3, ready={0, 2}, gone=set(), connections=6) == [3, 0, 3]
    # None ready yet (all starting): the connections wait in every worker's channel.
    assert _deal(2, ready=set(), gone=set(), connections=4) == [2, 2]


def test_a_worker_that_cannot_take_a_connection_is_skipped() -> None:
    """A dead worker's channel refuses (EPIPE): its turn goes to the next."""
    assert _deal(2, ready={0, 1}, gone={0}, connections=3) == [0, 3]


async def test_sigterm_keeps_dealing_connections_while_the_workers_drain(
    database: str, tmp_path: Path
) -> None:
    async with Gateways(database, tmp_path) as gateways:
        (gateway,) = await gateways.start(1, workers=2, env={"SHUTDOWN_DRAIN_SECONDS": "2"})
        gateway.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        # New connections are still served, and say the gateway is going away.
        for _ in range(4):
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
            assert (await reader.readline()).startswith(b"HTTP/1.1 503")
            writer.close()
        assert await asyncio.wait_for(gateway.process.wait(), 30) == 0
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", gateway.port)

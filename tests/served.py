"""Gateways served by real `python -m gateway serve --workers 1` processes on one
database, as replicas behind a load balancer would be: for tests and `make bench`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiohttp

from gateway.settings import DEFAULT_SCIM_BASE_PATH
from tests.metrics_text import Scrape
from tests.okta_sync import OktaClient


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    process: asyncio.subprocess.Process
    port: int
    metrics_port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{DEFAULT_SCIM_BASE_PATH}"

    def output(self) -> str:
        return self.log.read_text("utf-8", errors="replace")

    async def pages_by_mode(self, session: aiohttp.ClientSession) -> dict[str, float]:
        """User list pages after the first this process served, by how it found them."""
        async with session.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as resp:
            assert resp.status == 200
            scrape = Scrape(await resp.text())
        return {
            mode: scrape.value("scim_list_pages_total", resource="User", mode=mode)
            for mode in ("keyset", "offset")
        }

    async def stop(self) -> None:
        """SIGTERM: the graceful stop `serve` does; killed if it takes over 45 s."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 45)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class Gateways:
    """Starts gateways on the database `url`, each with its own port, metrics port and
    data directory under `directory`; stops them all on exit."""

    def __init__(self, url: str, directory: Path) -> None:
        self.url, self.directory = url, directory
        self.started: list[Gateway] = []

    async def __aenter__(self) -> Gateways:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.gather(*(g.stop() for g in self.started))

    async def start(
        self, count: int, *, workers: int = 1, env: dict[str, str] | None = None
    ) -> list[Gateway]:
        """`count` gateways of `workers` processes each, started at once; returns when
        all answer /readyz. `env` adds to (or overrides) their environment."""
        gateways = [
            await self._spawn(len(self.started) + n, workers, env or {}) for n in range(count)
        ]
        self.started.extend(gateways)
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(self._until_ready(session, g) for g in gateways))
        return gateways

    async def _spawn(self, n: int, workers: int, extra_env: dict[str, str]) -> Gateway:
        port, metrics_port = free_port(), free_port()
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "GATEWAY_DATA_DIR": str(self.directory / f"gateway{n}"),
            "METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            # Correctness and speed, not admission control: Okta's 8 connections never wait.
            "SCIM_RATE_LIMIT_PER_SECOND": "100000",
            "SCIM_RATE_LIMIT_BURST": "100000",
            "ORG_POOL_SHARE_PERCENT": "100",
            "DB_ACQUIRE_TIMEOUT_MS": "30000",
            "SHUTDOWN_DRAIN_SECONDS": "0",
            **extra_env,
        }
        log = self.directory / f"gateway{n}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "gateway", "serve", "--workers", str(workers), "--port", str(port)),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return Gateway(process, port, metrics_port, log)

    @staticmethod
    async def _until_ready(session: aiohttp.ClientSession, gateway: Gateway) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if gateway.process.returncode is not None:
                raise AssertionError(
                    f"serve exited {gateway.process.returncode}: {gateway.output()}"
                )
            try:
                async with session.get(f"http://127.0.0.1:{gateway.port}/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"serve did not come up in 60 s: {gateway.output()}")


async def import_walk(
    clients: list[OktaClient], *, count: int = 100, seconds: list[float] | None = None
) -> list[str]:
    """Okta's import: every page of /Users (startIndex 1, 1 + count, …), page n sent to
    clients[n % len(clients)]; the ids in page order. Each page's time goes to `seconds`."""
    ids: list[str] = []
    start, page = 1, 0
    while True:
        okta = clients[page % len(clients)]
        started = time.perf_counter()
        status, body = await okta.call("GET", f"/Users?startIndex={start}&count={count}")
        if seconds is not None:
            seconds.append(time.perf_counter() - started)
        assert status == 200, body
        assert body["startIndex"] == start
        ids += [r["id"] for r in body.get("Resources", [])]
        start, page = start + count, page + 1
        if start > body["totalResults"]:
            return ids

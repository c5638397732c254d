"""`python -m tests.chaos.poller URL CONNECTIONS INTERVAL`: GET URL over and over, print each answer.

A process of its own, so that the load generator's own work (opening 500
connections, encoding a 7 MB body, reading a 17 MB answer) never shows as a
wait. Each answer is a line "<sent> <received> <status> <X-Request-Id or -> <Retry-After
or ->" (times: time.time(), seconds) on stdout, flushed at once. Each of CONNECTIONS pollers
keeps one connection, so with several gateway workers (the supervisor deals
connections to them in turn) every worker is polled. POLLER_AUTHORIZATION, when set,
is sent as the Authorization header.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp


async def poll(url: str, interval: float, headers: dict[str, str]) -> None:
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        while True:
            sent = time.time()
            async with session.get(url) as resp:
                await resp.read()
            request_id = resp.headers.get("X-Request-Id", "-")
            retry_after = resp.headers.get("Retry-After", "-").strip() or "-"
            print(
                f"{sent:.6f} {time.time():.6f} {resp.status} {request_id} {retry_after}", flush=True
            )
            await asyncio.sleep(interval)


async def main(url: str, connections: int, interval: float) -> None:
    authorization = os.environ.get("POLLER_AUTHORIZATION")
    headers = {"Authorization": authorization} if authorization else {}
    await asyncio.gather(*(poll(url, interval, headers) for _ in range(connections)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))

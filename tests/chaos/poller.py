"""`python -m tests.chaos.poller URL CONNECTIONS INTERVAL`: poll URL, print each wait.

A process of its own, so that the load generator's own work (encoding a 7 MB
body, reading a 17 MB answer) never shows as a wait. Each poll is a line
"<sent> <received>" (time.time(), seconds) on stdout, flushed at once. Each of
CONNECTIONS pollers keeps one connection, so with several gateway workers
(SO_REUSEPORT spreads connections over them) every worker is polled.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp


async def poll(url: str, interval: float) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        while True:
            sent = time.time()
            async with session.get(url) as resp:
                await resp.read()
            print(f"{sent:.6f} {time.time():.6f}", flush=True)
            await asyncio.sleep(interval)


async def main(url: str, connections: int, interval: float) -> None:
    await asyncio.gather(*(poll(url, interval) for _ in range(connections)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))

"""`make bench`: an Okta import walked across two gateway processes.

Two `serve --workers 1` processes on the benchmark's database, and an Okta import
(GET /Users?startIndex=1&count=100, 101, … to the end) whose pages alternate
between them, as behind a load balancer. Prints how the pages after the first were
found (keyset or OFFSET, from each process's /metrics), the time of the first and
the last pages, and, for comparison, the last pages when no process knows where the
walk is (OFFSET: what most pages cost when positions were kept per process).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

from tests.okta_sync import OktaClient
from tests.served import Gateways, import_walk

PAGE = 100
EDGE_PAGES = 10


def _summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[max(0, int(len(ms) * 0.95) - 1)]
    return f"p50 {statistics.median(ms):6.2f} ms  p95 {p95:6.2f} ms  (n={len(ms)})"


async def bench_two_processes(url: str, token: str) -> None:
    directory = Path(tempfile.mkdtemp(prefix="gateway-bench-two-"))
    try:
        await _walk(url, token, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def _walk(url: str, token: str, directory: Path) -> None:
    async with Gateways(url, directory) as gateways, aiohttp.ClientSession() as session:
        pair = await gateways.start(2)
        clients = [OktaClient(session, g.base, token) for g in pair]
        for okta in clients:  # each process's pool and first statements
            assert (await okta.call("GET", "/Users?startIndex=1&count=1"))[0] == 200
        before = [await g.pages_by_mode(session) for g in pair]
        seconds: list[float] = []
        started = time.perf_counter()
        ids = await import_walk(clients, count=PAGE, seconds=seconds)
        elapsed = time.perf_counter() - started
        after = [await g.pages_by_mode(session) for g in pair]
        found = {
            mode: sum(a[mode] - b[mode] for a, b in zip(after, before, strict=True))
            for mode in ("keyset", "offset")
        }
        first, last = seconds[:EDGE_PAGES], seconds[-EDGE_PAGES:]
        print(
            f"import across 2 processes: {len(ids):,} users, {len(seconds)} pages of {PAGE} "
            f"in {elapsed:.1f} s, alternating"
        )
        print(
            f"  pages after the first: {found['keyset']:.0f} by keyset, "
            f"{found['offset']:.0f} by OFFSET"
        )
        print(f"  first {EDGE_PAGES} pages                  {_summary(first)}")
        print(f"  last {EDGE_PAGES} pages                   {_summary(last)}")
        # The same last pages with no position noted anywhere: found by OFFSET.
        conn = await asyncpg.connect(url)
        try:
            offset: list[float] = []
            starts = range(1 + (len(seconds) - EDGE_PAGES) * PAGE, len(ids) + 1, PAGE)
            for n, start in enumerate(starts):
                await conn.execute("DELETE FROM scim_page_positions")
                began = time.perf_counter()
                status, _ = await clients[n % 2].call(
                    "GET", f"/Users?startIndex={start}&count={PAGE}"
                )
                offset.append(time.perf_counter() - began)
                assert status == 200
        finally:
            await conn.close()
        print(f"  last {EDGE_PAGES} pages, no position      {_summary(offset)}")
        print(
            f"  ratio last/first page: walk {statistics.median(last) / statistics.median(first):.2f}x, "
            f"no position (OFFSET) {statistics.median(offset) / statistics.median(first):.2f}x"
        )

"""`make chaos`: the reliability checks at full size, against a running gateway.

    make chaos
    make chaos CHAOS_ARGS="--seconds 45 --stalled 250 --concurrent 500"

Starts a throwaway PostgreSQL of its own (never a shared one: it is stopped and
restarted) and `python -m gateway serve` on it in a subprocess, then runs:

1. faults: Okta-shaped traffic from two orgs for --seconds, during which the
   gateway's backends are terminated, the database is restarted (pg_ctl -m fast),
   and later stopped for 10 s;
2. stalled: --stalled connections of org A that send headers and half a body,
   then nothing, while org B works;
3. overload: --concurrent simultaneous requests of org A while org B works;
4. hostile: the hostile-input battery (tests/reliability/battery.py), full size;
5. event loop: /healthz polled while the largest accepted body (a team PUT with
   100,000 members) and a 40,000-key body are processed.

and prints one table: requests, 5xx, 503 with Retry-After, provisioning-log rows
lost, committed writes missing, and the p99 of the well-behaved org. Then it
greps everything the gateway printed for every token and email it was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from gateway.embedded import ControlledPostgres
from gateway.migrate import migrate
from gateway.store import orgs as org_store
from gateway.store import tokens as token_store
from tests.payloads import OKTA_HEADERS, PATCH_OP, dumps, okta_create_user
from tests.reliability.battery import cases, check, fill, headers_for

BASE = "/api/sch/scim/v2"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class Tally:
    """What one phase saw."""

    name: str
    requests: int = 0
    errors_5xx: int = 0
    unavailable_with_retry_after: int = 0
    unavailable_without_retry_after: int = 0
    other: dict[int, int] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # ids of users whose 201 was received
    well_behaved: list[float] = field(default_factory=list)  # seconds per request of org B
    rows_lost: int | None = None
    writes_missing: int | None = None
    note: str = ""

    def record(self, resp: aiohttp.ClientResponse) -> None:
        self.requests += 1
        status = resp.status
        self.other[status] = self.other.get(status, 0) + 1
        if status >= 500:
            self.errors_5xx += 1
        if status == 503:
            if resp.headers.get("Retry-After", "").isdigit():
                self.unavailable_with_retry_after += 1
            else:
                self.unavailable_without_retry_after += 1
        request_id = resp.headers.get("X-Request-Id")
        if request_id:
            self.request_ids.append(request_id)

    def p99(self) -> str:
        if not self.well_behaved:
            return "-"
        ms = sorted(s * 1000 for s in self.well_behaved)
        return f"{ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.0f} ms"


@dataclass
class Org:
    slug: str
    id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {**OKTA_HEADERS, "Authorization": f"Bearer {self.token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def call(
    session: aiohttp.ClientSession,
    tally: Tally,
    method: str,
    url: str,
    org: Org,
    body: Any = None,
    *,
    well_behaved: bool = False,
) -> tuple[int, Any]:
    started = time.perf_counter()
    try:
        async with session.request(
            method, url, headers=org.headers, data=dumps(body) if body is not None else None
        ) as resp:
            payload = await resp.read()
            tally.record(resp)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.requests += 1
        tally.other[-1] = tally.other.get(-1, 0) + 1
        tally.note = f"connection errors: {type(exc).__name__}"
        return -1, None
    if well_behaved:
        tally.well_behaved.append(time.perf_counter() - started)
    try:
        return status, json.loads(payload) if payload else None
    except ValueError:
        return status, None


async def okta_worker(
    session: aiohttp.ClientSession, url: str, org: Org, tally: Tally, until: float, worker: int
) -> None:
    """Okta's import-and-provision loop: look up, create, read, deactivate, list a page."""
    n = 0
    while time.monotonic() < until:
        n += 1
        name = f"{org.slug}-{worker}-{n}@example.com"
        good = org.slug == "polite"
        await call(
            session,
            tally,
            "GET",
            f'{url}/Users?filter=userName eq "{name}"',
            org,
            well_behaved=good,
        )
        status, user = await call(
            session,
            tally,
            "POST",
            f"{url}/Users",
            org,
            okta_create_user(user_name=name),
            well_behaved=good,
        )
        if status == 201 and user:
            tally.created.append(user["id"])
            await call(session, tally, "GET", f"{url}/Users/{user['id']}", org, well_behaved=good)
            await call(
                session,
                tally,
                "PATCH",
                f"{url}/Users/{user['id']}",
                org,
                {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "value": {"active": False}}],
                },
                well_behaved=good,
            )
        await call(
            session, tally, "GET", f"{url}/Users?startIndex=1&count=20", org, well_behaved=good
        )
        await asyncio.sleep(0.02)


async def faults(
    pg: ControlledPostgres, seconds: float, admin: Callable[[], Awaitable[asyncpg.Connection]]
) -> list[str]:
    """Backend termination at 20 %, restart at 45 %, a 10-second stop at 65 % of the run."""
    done = []
    started = time.monotonic()

    async def at(fraction: float) -> None:
        await asyncio.sleep(max(0.0, started + seconds * fraction - time.monotonic()))

    await at(0.2)
    conn = await admin()
    killed = await conn.fetchval(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'scim-gateway') t"
    )
    await conn.close()
    done.append(f"terminated {killed} backends")
    await at(0.45)
    await asyncio.to_thread(pg.stop, "fast")
    await asyncio.to_thread(pg.start)
    done.append("restarted (pg_ctl -m fast)")
    await at(0.65)
    await asyncio.to_thread(pg.stop, "fast")
    await asyncio.sleep(10)
    await asyncio.to_thread(pg.start)
    done.append("stopped 10 s")
    return done


async def stall(
    host: str, port: int, org: Org
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    body = dumps(okta_create_user(user_name=f"stalled-{uuid.uuid4().hex}@example.com"))
    writer.write(
        (
            f"POST {BASE}/Users HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {org.token}\r\n"
            f"Content-Type: application/scim+json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body[: len(body) // 2]
    )
    await writer.drain()
    return reader, writer


async def polite_traffic(
    session: aiohttp.ClientSession, url: str, org: Org, tally: Tally, until: float
) -> None:
    while time.monotonic() < until:
        await call(
            session, tally, "GET", f"{url}/Users?startIndex=1&count=10", org, well_behaved=True
        )
        await asyncio.sleep(0.02)


async def prepare(pg: ControlledPostgres) -> list[Org]:
    conn = await asyncpg.connect(pg.url)
    try:
        await migrate(conn)
        orgs = []
        for slug in ("greedy", "polite"):
            org = await org_store.create_org(conn, slug)
            token, _ = await token_store.create_token(conn, org.id)
            orgs.append(Org(slug, org.id, token))
        return orgs
    finally:
        await conn.close()


async def run(
    args: argparse.Namespace, pg: ControlledPostgres, orgs: list[Org], port: int
) -> list[Tally]:
    greedy, polite = orgs
    host = "127.0.0.1"
    url = f"http://{host}:{port}{BASE}"
    tallies: list[Tally] = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=70)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for _ in range(200):
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://{host}:{port}/readyz") as ready:
                    if ready.status == 200:
                        break
            await asyncio.sleep(0.1)

        # 1. Faults under steady Okta-shaped traffic.
        tally = Tally(f"faults ({args.seconds:g} s)")
        until = time.monotonic() + args.seconds
        workers = [
            okta_worker(session, url, org, tally, until, w) for org in orgs for w in range(3)
        ]
        fault_task = asyncio.create_task(faults(pg, args.seconds, lambda: asyncpg.connect(pg.url)))
        await asyncio.gather(*workers)
        tally.note = "; ".join(await fault_task)
        for _ in range(100):  # the gateway reconnects by itself
            async with session.get(f"http://{host}:{port}/readyz") as ready:
                if ready.status == 200:
                    break
            await asyncio.sleep(0.05)
        tallies.append(tally)

        # 2. Stalled connections of one org while the other works.
        tally = Tally(f"stalled ({args.stalled} conns)")
        stalled = await asyncio.gather(*(stall(host, port, greedy) for _ in range(args.stalled)))
        await polite_traffic(session, url, polite, tally, time.monotonic() + 8)
        answers: dict[str, int] = {}
        for reader, writer in stalled:
            status = "no answer in 30 s"
            with contextlib.suppress(TimeoutError, ConnectionError):
                received = await asyncio.wait_for(reader.read(), timeout=30)
                status = received[9:12].decode() or "closed without answer"
            answers[status] = answers.get(status, 0) + 1
            writer.close()
        tally.note = "stalled connections answered " + ", ".join(
            f"{n} × {status}" for status, n in sorted(answers.items())
        )
        tallies.append(tally)

        # 3. Overload: many simultaneous requests of one org.
        tally = Tally(f"overload ({args.concurrent} conns)")
        flood = Tally("flood")
        started = time.perf_counter()
        flood_done = asyncio.gather(
            *(
                call(session, flood, "GET", f"{url}/Users?count=50", greedy)
                for _ in range(args.concurrent)
            )
        )
        await polite_traffic(session, url, polite, tally, time.monotonic() + 3)
        await flood_done
        flood_seconds = time.perf_counter() - started
        tally.requests += flood.requests
        tally.errors_5xx += flood.errors_5xx
        tally.unavailable_with_retry_after += flood.unavailable_with_retry_after
        tally.request_ids += flood.request_ids
        shed = flood.other.get(429, 0) + flood.other.get(503, 0)
        tally.note = (
            f"flood: {flood.other.get(200, 0)} × 200, {flood.other.get(429, 0)} × 429, "
            f"{flood.other.get(503, 0)} × 503 in {flood_seconds:.1f} s ({shed} shed)"
        )
        tallies.append(tally)

        # 4. The hostile battery, full size.
        tally = Tally(f"hostile ({len(cases())} cases)")
        _, user = await call(
            session, tally, "POST", f"{url}/Users", polite, okta_create_user("h@example.com")
        )
        _, group = await call(
            session,
            tally,
            "POST",
            f"{url}/Groups",
            polite,
            {"schemas": [GROUP], "displayName": "H"},
        )
        wrong = []
        for case in cases():
            path, body = fill(case, user["id"], group["id"])
            async with session.request(
                case.method, url + path, headers=headers_for(case, polite.token), data=body
            ) as resp:
                tally.record(resp)
                text = await resp.read()
                answer: Any
                try:
                    answer = json.loads(text)
                except ValueError:
                    answer = text.decode("utf-8", "replace")
                if problems := check(case, resp.status, answer):
                    wrong.append(f"{case.name}: {problems}")
        tally.note = f"{len(wrong)} answers not as expected" + (
            f" ({'; '.join(wrong[:3])})" if wrong else ""
        )
        tallies.append(tally)

        # 5. The event loop while the largest bodies are processed.
        tally = Tally("event loop")
        tally.note = await loop_stall(session, host, port, url, pg, polite, tally)
        tallies.append(tally)

        # Lost rows and missing writes, on the database as it is now.
        conn = await asyncpg.connect(pg.url)
        try:
            for tally in tallies:
                logged = await conn.fetchval(
                    "SELECT count(*) FROM provisioning_log WHERE request_id = ANY($1::text[])",
                    tally.request_ids,
                )
                tally.rows_lost = len(set(tally.request_ids)) - logged
                if tally.created:
                    found = await conn.fetchval(
                        "SELECT count(*) FROM scim_users WHERE id = ANY($1::uuid[])",
                        tally.created,
                    )
                    tally.writes_missing = len(tally.created) - found
        finally:
            await conn.close()
    return tallies


async def loop_stall(
    session: aiohttp.ClientSession,
    host: str,
    port: int,
    url: str,
    pg: ControlledPostgres,
    org: Org,
    tally: Tally,
) -> str:
    """The longest /healthz wait while big bodies are processed (a stalled loop shows here)."""
    conn = await asyncpg.connect(pg.url)
    try:
        ids = await conn.fetchval(
            "WITH made AS (INSERT INTO scim_users (org_id, id, user_name, user_name_ci, attrs, "
            "attrs_ci, created_at, updated_at) SELECT $1, gen_random_uuid(), 'bulk' || i, "
            "'bulk' || i, '{}', '{}', now(), now() FROM generate_series(1, 100000) i "
            "RETURNING id) SELECT array_agg(id) FROM made",
            org.id,
        )
    finally:
        await conn.close()
    _, group = await call(
        session, tally, "POST", f"{url}/Groups", org, {"schemas": [GROUP], "displayName": "Big"}
    )
    members = {
        "schemas": [GROUP],
        "displayName": "Big",
        "members": [{"value": str(i), "display": "x"} for i in ids],
    }
    keys = {**okta_create_user("k@example.com"), **{f"k{i}": i for i in range(40_000)}}
    small = {**members, "members": members["members"][:10_000]}
    bodies = [
        ("40,000-key body", "POST", "/Users", keys),
        ("team PUT of 10,000 members", "PUT", f"/Groups/{group['id']}", small),
        ("team PUT of 100,000 members", "PUT", f"/Groups/{group['id']}", members),
    ]
    waits: list[float] = []
    stop = asyncio.Event()

    async def poll() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            async with session.get(f"http://{host}:{port}/healthz") as resp:
                await resp.read()
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)

    poller = asyncio.create_task(poll())
    await asyncio.sleep(0.2)
    seen = []
    for name, method, path, body in bodies:
        size = len(dumps(body)) / 2**20
        waits.clear()
        started = time.perf_counter()
        status, _ = await call(session, tally, method, url + path, org, body)
        took = time.perf_counter() - started
        worst = max(waits, default=0.0) * 1000
        seen.append(
            f"{name} ({size:.1f} MiB): {status} in {took:.2f} s, /healthz max {worst:.0f} ms"
        )
    stop.set()
    await poller
    return "; ".join(seen)


def print_table(tallies: list[Tally]) -> None:
    rows = [
        [
            "phase",
            "requests",
            "5xx",
            "503+Retry-After",
            "rows lost",
            "writes missing",
            "p99 well-behaved",
        ]
    ]
    for t in tallies:
        rows.append(
            [
                t.name,
                str(t.requests),
                str(t.errors_5xx),
                str(t.unavailable_with_retry_after)
                + (
                    f" (+{t.unavailable_without_retry_after} without)"
                    if t.unavailable_without_retry_after
                    else ""
                ),
                "-" if t.rows_lost is None else str(t.rows_lost),
                "-" if t.writes_missing is None else str(t.writes_missing),
                t.p99(),
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print()
    for t in tallies:
        statuses = ", ".join(f"{k}×{v}" for k, v in sorted(t.other.items()))
        print(f"{t.name}: {t.note}. statuses: {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="make chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=45.0, help="length of the faults phase")
    parser.add_argument("--stalled", type=int, default=250, help="stalled connections of one org")
    parser.add_argument(
        "--concurrent", type=int, default=500, help="simultaneous requests of one org"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-chaos-"))
    tmp.chmod(0o755)  # as root, the embedded server runs as a user of its own
    pg = ControlledPostgres(tmp)
    output = tmp / "gateway-output.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        orgs = asyncio.run(prepare(pg))
        port = free_port()
        env = {**os.environ, "DATABASE_URL": pg.url, "GATEWAY_PORT": str(port)}
        env.pop("TEST_DATABASE_URL", None)
        with output.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve"],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        tallies = asyncio.run(run(args, pg, orgs, port))
    finally:
        if proc is not None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(60)
        pg.cleanup()
    printed = output.read_text("utf-8", "replace")
    kept = Path(tempfile.gettempdir()) / "gateway-chaos-output.log"
    shutil.copyfile(output, kept)
    shutil.rmtree(tmp, ignore_errors=True)
    leaks = sum(printed.count(org.token) for org in orgs)
    leaks += printed.count("@example.com")  # every email the run sends is at example.com
    print_table(tallies)
    print(
        f"\ngateway output ({kept}): {len(printed.splitlines())} lines; "
        f"tokens and emails in it: {leaks}"
    )


main()

"""`make chaos`: the reliability checks at full size, against a running gateway.

    make chaos
    make chaos CHAOS_ARGS="--seconds 45 --stalled 250 --concurrent 500 --users 250"
    make chaos CHAOS_ARGS="--phases overload,loop"

Starts a throwaway PostgreSQL of its own (never a shared one: it is stopped and
restarted) and `python -m gateway serve` on it in a subprocess, creates --users
users in each of two orgs through it (every page either org lists is full, as
after a first sync), then runs (all by default, or those --phases names, in that
order):

1. faults: Okta-shaped traffic from two orgs for --seconds, during which the
   gateway's backends are terminated, the database is restarted (pg_ctl -m fast),
   and later stopped for 10 s;
2. stalled: --stalled connections of org A that send headers and half a body,
   then nothing, while org B works;
3. overload: --concurrent simultaneous requests of org A while org B works;
4. hostile: the hostile-input battery (tests/reliability/battery.py), full size;
5. loop: /healthz polled, on connections to every worker, while the largest
   accepted bodies are processed one by one (team PUT, POST, GET and PATCHes at
   the members cap, a user PATCH at the attributes cap, a refused 40,000-key body).

and prints one table: requests, 5xx, 503 with Retry-After, provisioning-log rows
lost, committed writes missing, the p99 of the well-behaved org, and the longest
/healthz wait while a big body was processed (how long the event loop stalled).
Then it greps everything the gateway printed for every token and email it was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
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
from gateway.scim.limits import MAX_MEMBERS, MAX_OPERATIONS, MAX_PATCH_PATHS
from gateway.store import orgs as org_store
from gateway.store import tokens as token_store
from tests.payloads import OKTA_HEADERS, PATCH_OP, dumps, okta_create_user
from tests.reliability.battery import cases, check, fill, headers_for
from tests.served import free_port

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
    # The event-loop phase: the longest /healthz wait during each body.
    loop_waits: list[float] = field(default_factory=list)
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

    def loop_stall(self) -> str:
        return f"{max(self.loop_waits):.0f} ms" if self.loop_waits else "-"

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


def polite_traffic(run: Run) -> Poller:
    """The well-behaved org's list requests, from a process of its own."""
    return Poller(f"{run.url}/Users?startIndex=1&count=10", 1, 0.02, run.polite)


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


PHASES = ("faults", "stalled", "overload", "hostile", "loop")


@dataclass
class Run:
    """What every phase needs: the gateway's address, the database, the two orgs."""

    args: argparse.Namespace
    session: aiohttp.ClientSession
    pg: ControlledPostgres
    host: str
    port: int
    greedy: Org
    polite: Org

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{BASE}"

    async def create(self, tally: Tally, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """A user or team of the well-behaved org; its resource as answered."""
        status, created = await call(
            self.session, tally, "POST", self.url + path, self.polite, body
        )
        assert status == 201, (status, created)
        return dict(created)

    async def ready(self, attempts: int) -> None:
        for _ in range(attempts):
            with contextlib.suppress(aiohttp.ClientError):
                async with self.session.get(f"http://{self.host}:{self.port}/readyz") as ready:
                    if ready.status == 200:
                        return
            await asyncio.sleep(0.1)


async def run(
    args: argparse.Namespace, pg: ControlledPostgres, orgs: list[Org], port: int
) -> list[Tally]:
    greedy, polite = orgs
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=70)
    phases = {
        "faults": faults_phase,
        "stalled": stalled_phase,
        "overload": overload_phase,
        "hostile": hostile_phase,
        "loop": loop_phase,
    }
    tallies: list[Tally] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        state = Run(args, session, pg, "127.0.0.1", port, greedy, polite)
        await state.ready(200)
        await seed_users(state, args.users)
        for name in args.phases:
            tallies.append(await phases[name](state))
        await count_losses(pg, tallies)
    return tallies


async def seed_users(run: Run, users: int) -> None:
    """`users` users in each org, as a first sync leaves them, before any phase runs:
    the flood's pages and the polite org's are full pages, as they are in production
    (with empty orgs the overload phase measured a third of what it costs)."""
    tally = Tally("seed")

    async def create(org: Org, first: int) -> None:
        for i in range(first, users, 4):
            body = okta_create_user(user_name=f"seed-{org.slug}-{i}@example.com")
            for _ in range(100):  # the token's rate: wait as Okta does
                status, _ = await call(run.session, tally, "POST", f"{run.url}/Users", org, body)
                if status != 429:
                    break
                await asyncio.sleep(0.5)

    await asyncio.gather(*(create(org, w) for org in (run.greedy, run.polite) for w in range(4)))
    if set(tally.other) - {201, 429}:
        raise SystemExit(f"seeding {users} users per org failed: {tally.other} {tally.note}")


async def faults_phase(run: Run) -> Tally:
    """Steady Okta-shaped traffic from both orgs while the database fails three ways."""
    tally = Tally(f"faults ({run.args.seconds:g} s)")
    until = time.monotonic() + run.args.seconds
    workers = [
        okta_worker(run.session, run.url, org, tally, until, w)
        for org in (run.greedy, run.polite)
        for w in range(3)
    ]
    fault_task = asyncio.create_task(
        faults(run.pg, run.args.seconds, lambda: asyncpg.connect(run.pg.url))
    )
    await asyncio.gather(*workers)
    tally.note = "; ".join(await fault_task)
    await run.ready(100)  # the gateway reconnects by itself
    return tally


async def stalled_phase(run: Run) -> Tally:
    """Connections of one org that stall mid-body while the other org works."""
    tally = Tally(f"stalled ({run.args.stalled} conns)")
    async with polite_traffic(run) as polite:
        started = time.time()
        stalled = await asyncio.gather(
            *(stall(run.host, run.port, run.greedy) for _ in range(run.args.stalled))
        )
        await asyncio.sleep(8)
        polite.tally(tally, started, time.time())
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
    return tally


async def overload_phase(run: Run) -> Tally:
    """Many simultaneous requests of one org while the other works."""
    tally = Tally(f"overload ({run.args.concurrent} conns)")
    flood = Tally("flood")
    async with polite_traffic(run) as polite:
        started = time.time()
        flood_done = asyncio.gather(
            *(
                call(run.session, flood, "GET", f"{run.url}/Users?count=50", run.greedy)
                for _ in range(run.args.concurrent)
            )
        )
        await asyncio.sleep(3)
        await flood_done
        flood_seconds = time.time() - started
        polite.tally(tally, started, time.time())
    tally.requests += flood.requests
    tally.errors_5xx += flood.errors_5xx
    tally.unavailable_with_retry_after += flood.unavailable_with_retry_after
    tally.request_ids += flood.request_ids
    shed = flood.other.get(429, 0) + flood.other.get(503, 0)
    tally.note = (
        f"flood: {flood.other.get(200, 0)} × 200, {flood.other.get(429, 0)} × 429, "
        f"{flood.other.get(503, 0)} × 503 in {flood_seconds:.1f} s ({shed} shed)"
    )
    return tally


async def hostile_phase(run: Run) -> Tally:
    """The hostile battery, full size."""
    tally = Tally(f"hostile ({len(cases())} cases)")
    user = await run.create(tally, "/Users", okta_create_user("h@example.com"))
    group = await run.create(tally, "/Groups", {"schemas": [GROUP], "displayName": "H"})
    wrong = []
    for case in cases():
        path, body = fill(case, user["id"], group["id"])
        async with run.session.request(
            case.method, run.url + path, headers=headers_for(case, run.polite.token), data=body
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
    return tally


async def count_losses(pg: ControlledPostgres, tallies: list[Tally]) -> None:
    """Lost rows and missing writes, on the database as it is now."""
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


# /healthz pollers, each on a connection of its own: the supervisor deals
# connections to the workers in turn, so every worker has some, and at least one
# poller waits on the worker that serves the big body.
POLLERS = 6
POLL_SECONDS = 0.02
IDLE_SECONDS = 3.0


@dataclass(frozen=True)
class Answer:
    sent: float
    received: float
    status: int
    request_id: str
    retry_after: bool


class Poller:
    """`tests.chaos.poller` in a process of its own, and the answers it saw."""

    def __init__(
        self,
        url: str,
        connections: int = POLLERS,
        interval: float = POLL_SECONDS,
        org: Org | None = None,
    ) -> None:
        self.args = (url, str(connections), str(interval))
        self.env = {**os.environ}
        if org is not None:
            self.env["POLLER_AUTHORIZATION"] = f"Bearer {org.token}"
        self.answers: list[Answer] = []
        self.answered = asyncio.Event()

    async def __aenter__(self) -> Poller:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.chaos.poller",
            *self.args,
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
        )
        self.reader = asyncio.create_task(self._read())
        await self.answered.wait()
        await asyncio.sleep(0.5)  # every poller connected
        return self

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            sent, received, status, request_id, retry_after = line.decode().split()
            self.answers.append(
                Answer(float(sent), float(received), int(status), request_id, retry_after.isdigit())
            )
            self.answered.set()

    def during(self, start: float, end: float) -> list[Answer]:
        """The answers to polls that were waiting at some time between `start` and `end`."""
        return [a for a in self.answers if a.sent < end and a.received > start]

    def worst_wait(self, start: float, end: float) -> float:
        return max((a.received - a.sent for a in self.during(start, end)), default=0.0)

    def tally(self, tally: Tally, start: float, end: float) -> None:
        """Count the answers between `start` and `end` as the well-behaved org's."""
        for answer in self.during(start, end):
            tally.requests += 1
            tally.other[answer.status] = tally.other.get(answer.status, 0) + 1
            if answer.status >= 500:
                tally.errors_5xx += 1
            if answer.status == 503:
                tally.unavailable_with_retry_after += answer.retry_after
                tally.unavailable_without_retry_after += not answer.retry_after
            if answer.request_id != "-":
                tally.request_ids.append(answer.request_id)
            tally.well_behaved.append(answer.received - answer.sent)

    async def __aexit__(self, *exc: object) -> None:
        self.process.terminate()
        await self.process.wait()
        await self.reader


async def send(run: Run, tally: Tally, method: str, path: str, data: bytes | None) -> int:
    """One request with a body encoded beforehand; the answer is read, not parsed.

    On a connection of its own: a pooled one may have idled past the gateway's
    keep-alive timeout while the phase prepared (a stale connection is the load
    generator's failure, not the gateway's).
    """
    headers = run.polite.headers
    timeout = aiohttp.ClientTimeout(total=120)
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
            session.request(
                method, run.url + path, headers=headers, data=data, timeout=timeout
            ) as resp,
        ):
            await resp.read()
            tally.record(resp)
            return resp.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.requests += 1
        tally.other[-1] = tally.other.get(-1, 0) + 1
        tally.note = f"connection errors: {type(exc).__name__}"
        return -1


async def loop_phase(run: Run) -> Tally:
    """The longest /healthz wait while the largest accepted bodies are processed.

    A stalled event loop shows as a /healthz request that waits; the figure is
    the worst wait of any poller during each body.
    """
    tally = Tally("event loop")
    conn = await asyncpg.connect(run.pg.url)
    try:
        ids = await conn.fetchval(
            "WITH made AS (INSERT INTO scim_users (org_id, id, user_name, user_name_ci, attrs, "
            "attrs_ci, created_at, updated_at) SELECT $1, gen_random_uuid(), 'bulk' || i, "
            "'bulk' || i, '{}', '{}', now(), now() FROM generate_series(1, $2) i "
            "RETURNING id) SELECT array_agg(id) FROM made",
            run.polite.id,
            MAX_MEMBERS,
        )
    finally:
        await conn.close()
    group = await run.create(tally, "/Groups", {"schemas": [GROUP], "displayName": "Big"})
    user = await run.create(tally, "/Users", okta_create_user("l@x.test"))
    members = [{"value": str(i), "display": f"bulk{n}"} for n, i in enumerate(ids)]
    team = f"/Groups/{group['id']}"
    per_op = MAX_MEMBERS // MAX_OPERATIONS
    bodies: list[tuple[str, str, str, dict[str, Any]]] = [
        (
            "40,000-key body (refused)",
            "POST",
            "/Users",
            {**okta_create_user("k@x.test"), **{f"k{i}": i for i in range(40_000)}},
        ),
        (
            f"team PUT of {MAX_MEMBERS // 10:,} members",
            "PUT",
            team,
            {"schemas": [GROUP], "displayName": "Big", "members": members[: MAX_MEMBERS // 10]},
        ),
        (
            f"team PUT of {MAX_MEMBERS:,} members",
            "PUT",
            team,
            {"schemas": [GROUP], "displayName": "Big", "members": members},
        ),
        (f"team GET of {MAX_MEMBERS:,} members", "GET", team, {}),
        (
            f"team PATCH removing {MAX_OPERATIONS:,} members, one per operation",
            "PATCH",
            team,
            {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "remove", "path": f'members[value eq "{m["value"]}"]'}
                    for m in members[:MAX_OPERATIONS]
                ],
            },
        ),
        (
            f"team PATCH adding {MAX_MEMBERS:,} members in {MAX_OPERATIONS:,} operations",
            "PATCH",
            team,
            {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "add", "path": "members", "value": members[k : k + per_op]}
                    for k in range(0, MAX_MEMBERS, per_op)
                ],
            },
        ),
        (
            f"team POST of {MAX_MEMBERS:,} members",
            "POST",
            "/Groups",
            {"schemas": [GROUP], "displayName": "Big 2", "members": members},
        ),
        (
            f"team PUT of {MAX_MEMBERS:,} members none of them users (refused)",
            "PUT",
            team,
            {
                "schemas": [GROUP],
                "displayName": "Big",
                "members": [{"value": str(uuid.uuid4())} for _ in range(MAX_MEMBERS)],
            },
        ),
        (
            f"user PATCH naming {MAX_PATCH_PATHS:,} attributes",
            "PATCH",
            f"/Users/{user['id']}",
            {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "add", "value": {f"x{i}_{j}": "v" for j in range(250)}}
                    for i in range(MAX_PATCH_PATHS // 250)
                ],
            },
        ),
    ]
    async with Poller(f"http://{run.host}:{run.port}/healthz") as poller:
        # The floor: how long /healthz waits on this machine with no body in flight.
        started = time.time()
        await asyncio.sleep(IDLE_SECONDS)
        idle = poller.worst_wait(started, time.time()) * 1000
        seen = [f"idle {IDLE_SECONDS:g} s: /healthz max {idle:.0f} ms"]
        for name, method, path, body in bodies:
            data = dumps(body) if body else None
            started = time.time()
            status = await send(run, tally, method, path, data)
            took = time.time() - started
            worst = poller.worst_wait(started, time.time()) * 1000
            tally.loop_waits.append(worst)
            size = len(data or b"") / 2**20
            seen.append(
                f"{name} ({size:.1f} MiB): {status} in {took:.2f} s, /healthz max {worst:.0f} ms"
            )
    tally.note = "; ".join(seen)
    return tally


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
            "longest loop stall",
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
                t.loop_stall(),
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
    parser.add_argument(
        "--users",
        type=int,
        default=250,
        help="users each org holds before the phases (created through the gateway)",
    )
    parser.add_argument("--stalled", type=int, default=250, help="stalled connections of one org")
    parser.add_argument(
        "--concurrent", type=int, default=500, help="simultaneous requests of one org"
    )
    parser.add_argument(
        "--phases",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        default=list(PHASES),
        help=f"which phases to run, comma-separated, in order (default: {','.join(PHASES)})",
    )
    args = parser.parse_args()
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"unknown phases {', '.join(sorted(unknown))}; choose from {PHASES}")
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

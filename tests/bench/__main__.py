"""Benchmarks of the request paths Okta hammers, on a real PostgreSQL.

    make bench                                  # BENCH_DATABASE_URL, else embedded
    make bench BENCH_ARGS="--users 1000000"
    make bench BENCH_ARGS="--only-log --log-rows 1000000,10000000"
    make bench BENCH_ARGS="--only-dashboard --users 100000 --log-rows 10000000"

Prints latency percentiles and the ratios that matter: the cost of an import page
near the end of a large org against the first page (keyset vs OFFSET), the same
import walked across two gateway processes (tests/bench/scale_out.py), and the
round trips per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.embedded import throwaway_postgres
from gateway.migrate import migrate
from gateway.scim.resource import USER_TYPE, Normalizer
from gateway.scim.users import to_write
from gateway.settings import Settings
from gateway.store import orgs as org_store
from gateway.store import tokens as token_store
from gateway.store.provisioning_log import LogRow, PendingRow, log_json, record_request
from gateway.store.users import UserWrite, insert_user
from tests.bench.ceiling import bench_ceiling
from tests.bench.dashboard import bench_dashboard, seed_teams
from tests.bench.first_sync import bench_first_sync
from tests.bench.log import bench_log, seed_org_log
from tests.bench.scale_out import bench_two_processes
from tests.conftest import with_database
from tests.payloads import dumps, okta_create_user

SEED_SQL = (Path(__file__).parent / "seed.sql").read_text()


def summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return f"p50 {statistics.median(ms):6.2f} ms  p95 {p95:6.2f} ms  (n={len(ms)})"


async def timed(n: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - started)
    return samples


async def seed_users(conn: asyncpg.Connection, org_id: uuid.UUID, users: int) -> None:
    print(
        f"server: {await conn.fetchval('SHOW server_version')}; seeding {users:,} users…",
        flush=True,
    )
    started = time.perf_counter()
    step = 100_000
    for first in range(1, users + 1, step):
        await conn.execute(SEED_SQL, org_id, first, min(first + step - 1, users))
    await conn.execute("ANALYZE scim_users")
    print(f"seeded in {time.perf_counter() - started:.1f} s")


def bench_settings(url: str) -> Settings:
    return Settings(database_url=url, public_base_url="https://bench.example")


async def run_dashboard_only(url: str, users: int, log_rows: int, requests: int) -> None:
    """The dashboard on an org seeded by SQL: users, teams and `log_rows` log rows."""
    conn = await asyncpg.connect(url)
    org = await org_store.create_org(conn, "bench")
    _, token_info = await token_store.create_token(conn, org.id, note="Okta")
    await seed_users(conn, org.id, users)
    await seed_teams(conn, org.id)
    await conn.close()
    await seed_org_log(url, org.id, token_info.id, log_rows)
    async with TestServer(create_app(bench_settings(url))) as server:
        await bench_dashboard(url, org.id, server, requests, users)


async def run(
    server_url: str,
    users: int,
    requests: int,
    log_sizes: list[int],
    only_log: bool,
    only_dashboard: bool,
) -> None:
    name = f"gw_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    try:
        conn = await asyncpg.connect(url)
        await migrate(conn)
        if only_log or only_dashboard:
            await conn.close()
            if only_log:
                await bench_log(url, log_sizes, requests)
            else:
                await run_dashboard_only(url, users, max(log_sizes, default=0), requests)
            return
        org = await org_store.create_org(conn, "bench")
        token, token_info = await token_store.create_token(conn, org.id)
        token_id = token_info.id
        await seed_users(conn, org.id, users)
        await conn.close()
        await bench_two_processes(url, token)

        app = create_app(bench_settings(url))
        async with (
            TestServer(app) as server,
            aiohttp.ClientSession(
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/scim+json",
                }
            ) as session,
        ):
            base = str(server.make_url("/api/sch/scim/v2"))

            async def get(path: str) -> dict[str, Any]:
                async with session.get(base + path) as resp:
                    assert resp.status == 200, await resp.text()
                    return dict(await resp.json(content_type=None))

            await get("/Users?startIndex=1&count=2")  # warm the pool
            group_samples: dict[int, float] = {}
            lookup = await timed(
                requests,
                lambda i: get(
                    "/Users?filter="
                    + quote(f'userName eq "USER{(i * 7919) % users + 1}@example.com"')
                    + "&startIndex=1&count=100"
                ),
            )
            print(f"lookup userName eq (found)        {summary(lookup)}")
            missing = await timed(
                requests,
                lambda i: get(
                    "/Users?filter="
                    + quote(f'userName eq "nobody{i}@example.com"')
                    + "&startIndex=1&count=100"
                ),
            )
            print(f"lookup userName eq (not found)    {summary(missing)}")

            first_page = await timed(20, lambda i: get("/Users?startIndex=1&count=100"))
            last_start = max(users - 199, 1)

            # Okta's walk: the page before sets the keyset cursor for the next one.
            async def walk_end(i: int) -> None:
                await get(f"/Users?startIndex={last_start}&count=100")
                started = time.perf_counter()
                await get(f"/Users?startIndex={last_start + 100}&count=100")
                walk_samples.append(time.perf_counter() - started)

            walk_samples: list[float] = []
            positions = await asyncpg.connect(url)
            await positions.execute("DELETE FROM scim_page_positions")
            await timed(20, walk_end)
            offset_end = []
            for _ in range(10):
                # No position noted: the page is found by OFFSET.
                await positions.execute("DELETE FROM scim_page_positions")
                started = time.perf_counter()
                await get(f"/Users?startIndex={last_start + 100}&count=100")
                offset_end.append(time.perf_counter() - started)
            await positions.close()
            print(f"import page 1                     {summary(first_page)}")
            print(f"import last page, keyset (walk)   {summary(walk_samples)}")
            print(f"import last page, OFFSET (jump)   {summary(offset_end)}")
            print(
                f"ratio last/first page: keyset {statistics.median(walk_samples) / statistics.median(first_page):.2f}x, "
                f"OFFSET {statistics.median(offset_end) / statistics.median(first_page):.2f}x"
            )

            async def create(i: int) -> None:
                async with session.post(
                    base + "/Users", data=dumps(okta_create_user(f"new{i}@example.com"))
                ) as resp:
                    assert resp.status == 201, await resp.text()

            creates = await timed(requests, create)
            print(f"POST /Users (sequential)          {summary(creates)}")
            started = time.perf_counter()
            await asyncio.gather(*(create(requests + i) for i in range(requests)))
            elapsed = time.perf_counter() - started
            print(f"POST /Users, {requests} concurrent       {requests / elapsed:7.0f} req/s")

            async def deactivate(i: int) -> None:
                found = await get("/Users?filter=" + quote(f'userName eq "new{i}@example.com"'))
                user_id = found["Resources"][0]["id"]
                body = {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "value": {"active": False}}],
                }
                started = time.perf_counter()
                async with session.patch(base + f"/Users/{user_id}", data=dumps(body)) as resp:
                    assert resp.status == 200
                patch_samples.append(time.perf_counter() - started)

            patch_samples: list[float] = []
            await timed(min(requests, 200), deactivate)
            print(f"PATCH deactivate                  {summary(patch_samples)}")

            # The log's own cost. A lookup GET pays one extra round trip for its row; a
            # write carries its row inside its own statement.
            conn = await asyncpg.connect(url)
            row = LogRow(
                occurred_at=datetime.now(UTC),
                request_id="bench",
                method="GET",
                path="/Users",
                query="filter=userName%20eq%20%22x%22",
                status=200,
                duration_ms=1.0,
                org_id=org.id,
                token_id=token_id,
                event="Look up user",
                event_detail="no user found: Okta creates it",
                response_body='{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0}',
            )
            log_samples = await timed(requests, lambda i: record_request(conn, row))
            print(f"log row alone (one round trip)    {summary(log_samples)}")
            print(
                f"share of a lookup GET: {statistics.median(log_samples) / statistics.median(lookup):.0%}"
            )
            now = datetime.now(UTC)

            def user(i: int, tag: str) -> UserWrite:
                return to_write(
                    Normalizer(USER_TYPE).document(okta_create_user(f"{tag}{i}@example.com"))
                )

            with_log = await timed(
                requests,
                lambda i: insert_user(
                    conn, org.id, uuid.uuid4(), user(i, "logged"), now, PendingRow(log_json(row))
                ),
            )
            bare_sql = (
                "INSERT INTO scim_users (org_id, id, user_name, user_name_ci, external_id, active, "
                "display_name, emails_ci, attrs, attrs_ci, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            )
            bare = await timed(
                requests,
                lambda i: conn.execute(
                    bare_sql, org.id, uuid.uuid4(), *user(i, "bare").columns(), now, now
                ),
            )
            print(f"user insert with its log row      {summary(with_log)}")
            print(f"user insert without a log row     {summary(bare)}")
            print(
                f"log cost inside POST /Users: {1000 * (statistics.median(with_log) - statistics.median(bare)):.2f} ms "
                f"of a {1000 * statistics.median(creates):.2f} ms request"
            )
            await conn.close()

            # One member in and out of a team of 10 and of a team of min(users, 100,000).
            conn = await asyncpg.connect(url)
            for size in (10, min(users, 100_000)):
                async with session.post(
                    base + "/Groups",
                    data=dumps(
                        {
                            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                            "displayName": f"team-{size}",
                        }
                    ),
                ) as resp:
                    group_id = (await resp.json(content_type=None))["id"]
                await conn.execute(
                    "INSERT INTO scim_group_members (org_id, group_id, user_id) "
                    "SELECT org_id, $2::uuid, id FROM scim_users WHERE org_id = $1 ORDER BY seq LIMIT $3",
                    org.id,
                    group_id,
                    size,
                )
                # As autovacuum would after a bulk change; without statistics the
                # planner takes every team for a one-member team.
                await conn.execute("ANALYZE scim_group_members")
                member = await conn.fetchval(
                    "SELECT id FROM scim_users WHERE org_id = $1 ORDER BY seq DESC LIMIT 1", org.id
                )

                async def toggle(
                    i: int, member: uuid.UUID = member, group_id: str = group_id
                ) -> None:
                    op = {"op": "add", "path": "members", "value": [{"value": str(member)}]}
                    if i % 2:
                        op = {"op": "remove", "path": f'members[value eq "{member}"]'}
                    body = {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [op],
                    }
                    async with session.patch(
                        base + f"/Groups/{group_id}", data=dumps(body)
                    ) as resp:
                        assert resp.status == 204, await resp.text()

                samples = await timed(min(requests, 200), toggle)
                group_samples[size] = statistics.median(samples)
                print(f"PATCH one member, team of {size:>7,} {summary(samples)}")
            await conn.close()
            small, large = group_samples[10], group_samples[min(users, 100_000)]
            print(f"ratio large/small team PATCH: {large / small:.2f}x")
            await bench_dashboard(url, org.id, server, requests, users)
        if log_sizes:
            await bench_log(url, log_sizes, requests)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="make bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--users", type=int, default=200_000, help="users in the benchmark org (default 200,000)"
    )
    parser.add_argument(
        "--requests", type=int, default=300, help="requests per measurement (default 300)"
    )
    parser.add_argument(
        "--log-rows",
        default="1000000,10000000",
        help="provisioning-log sizes of one org to measure the log's reads at, comma-"
        "separated (default 1000000,10000000; empty to skip)",
    )
    parser.add_argument("--only-log", action="store_true", help="only the provisioning log's reads")
    parser.add_argument(
        "--only-ceiling",
        action="store_true",
        help="only the served gateway against the ceiling prototype, and the first sync",
    )
    parser.add_argument(
        "--ceiling-users", type=int, default=100_000, help="users seeded for it (default 100,000)"
    )
    parser.add_argument(
        "--ceiling-rounds", type=int, default=2, help="interleaved rounds (default 2)"
    )
    parser.add_argument(
        "--ceiling-seconds", type=int, default=5, help="seconds per wrk run (default 5)"
    )
    parser.add_argument(
        "--first-sync-users",
        default="10000",
        help="users of the Okta first sync against a served gateway, comma-separated sizes "
        "(default 10000; e.g. 10000,100000; empty to skip)",
    )
    parser.add_argument(
        "--only-dashboard",
        action="store_true",
        help="only the dashboard's pages and API calls, on an org seeded by SQL with --users "
        "users, their teams and the largest --log-rows size of log rows",
    )
    args = parser.parse_args()
    if args.only_log and args.only_dashboard:
        parser.error("--only-log and --only-dashboard exclude each other")
    log_sizes = sorted(int(n) for n in args.log_rows.split(",") if n.strip())
    sync_sizes = [int(n) for n in args.first_sync_users.split(",") if n.strip()]

    def served(url: str) -> None:
        if args.only_log:
            return
        bench_ceiling(url, args.ceiling_users, args.ceiling_rounds, args.ceiling_seconds)
        for users in sync_sizes:
            bench_first_sync(url, users)

    server_url = os.environ.get("BENCH_DATABASE_URL")
    if server_url:
        if not args.only_ceiling:
            asyncio.run(
                run(
                    server_url,
                    args.users,
                    args.requests,
                    log_sizes,
                    args.only_log,
                    args.only_dashboard,
                )
            )
        if not args.only_dashboard:
            served(server_url)
        return
    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    tmp.chmod(0o755)
    with throwaway_postgres(tmp) as url:
        if not args.only_ceiling:
            asyncio.run(
                run(url, args.users, args.requests, log_sizes, args.only_log, args.only_dashboard)
            )
        if not args.only_dashboard:
            served(url)


if __name__ == "__main__":
    main()

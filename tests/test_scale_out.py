"""Two real gateway processes (`python -m gateway serve` on two ports) on one database,
as two replicas behind a load balancer would be.

- An Okta-shaped first sync of 1,000 users (lookup GET, then POST) and an Okta import
  (GET /Users?startIndex=1&count=100, 101, … to the end) alternate between the two:
  the result is what one process gives, and every import page after the first is
  found by keyset, whichever process served the page before it (each process's
  /metrics counts its pages by how they were found).
- Partition upkeep runs in one process under its advisory lock when both start
  together: while another holds the lock neither touches the partitions, and of two
  that start together exactly one creates the missing ones.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import aiohttp
import asyncpg

from tests.conftest import database_with_org, drop_database
from tests.okta_sync import OktaClient
from tests.payloads import okta_create_user
from tests.served import Gateways, import_walk

USERS = 1_000
PAGE = 100
UPKEEP_LOCK = 6636323005470001  # sql/queries/provisioning_log.sql try_upkeep_lock


@dataclass
class Deployment:
    """A database with one org and its token, and gateways served on it."""

    url: str
    org_id: uuid.UUID
    token: str
    gateways: Gateways


@asynccontextmanager
async def deployment(pg_server_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    url, org, token = await database_with_org(pg_server_url)
    try:
        async with Gateways(url, tmp_path) as gateways:
            yield Deployment(url, org.id, token, gateways)
    finally:
        await drop_database(pg_server_url, url)


async def test_two_processes_serve_a_first_sync_and_an_import_as_one(
    pg_server_url: str, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        deployed = await stack.enter_async_context(deployment(pg_server_url, tmp_path))
        gateways = await deployed.gateways.start(2)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        clients = [OktaClient(session, g.base, deployed.token) for g in gateways]

        # The first sync: each user looked up on one process and created on the other.
        gate = asyncio.Semaphore(8)

        async def assign(i: int) -> None:
            body = okta_create_user(f"learner{i:04d}@example.com", external_id=f"00u{i:017d}")
            lookup = quote(f'userName eq "{body["userName"]}"')
            async with gate:
                status, found = await clients[i % 2].call(
                    "GET", f"/Users?filter={lookup}&startIndex=1&count=100"
                )
                assert (status, found["totalResults"]) == (200, 0), found
                status, created = await clients[(i + 1) % 2].call("POST", "/Users", body)
                assert status == 201, created

        await asyncio.gather(*(assign(i) for i in range(USERS)))
        for okta in clients:
            assert okta.result.statuses == {200: USERS // 2, 201: USERS // 2}
        # No statement planned while the table was nearly empty goes on reading all
        # of it, or all of the org's index entries: a first sync runs before any
        # ANALYZE. (Reading each user found a few times is what it costs.)
        assert await _users_rows_read_by_scans(deployed.url) < 20 * USERS

        # The import, alternating, then on one process: the same pages.
        alternating = await import_walk(clients)
        single = await import_walk(clients[:1])
        db = await asyncpg.connect(deployed.url)
        try:
            in_order = await db.fetch(
                "SELECT id::text, user_name FROM scim_users WHERE org_id = $1 ORDER BY seq",
                deployed.org_id,
            )
            logged = await db.fetchval("SELECT count(*) FROM provisioning_log")
        finally:
            await db.close()
        assert alternating == single == [r["id"] for r in in_order]
        assert sorted(r["user_name"] for r in in_order) == [
            f"learner{i:04d}@example.com" for i in range(USERS)
        ]
        # One log row per request, whichever process served it.
        assert logged == sum(okta.result.requests for okta in clients)

        # Pages after the first: 9 of the alternating walk (4 on the first process, 5 on
        # the second, each continuing the other's), 9 of the single one; none by OFFSET.
        pages = USERS // PAGE - 1
        counts = [await g.pages_by_mode(session) for g in gateways]
        assert counts == [
            {"keyset": pages // 2 + pages, "offset": 0},
            {"keyset": pages - pages // 2, "offset": 0},
        ]


async def _users_rows_read_by_scans(url: str) -> int:
    """Rows and index entries of scim_users read by scans so far, once the servers'
    backends have reported their statistics (they do so within seconds of going idle)."""
    db = await asyncpg.connect(url)
    try:
        for _ in range(150):
            row = await db.fetchrow(
                "SELECT n_tup_ins, seq_tup_read + (SELECT sum(idx_tup_read) "
                "FROM pg_stat_user_indexes i WHERE i.relid = t.relid) AS read "
                "FROM pg_stat_user_tables t "
                "WHERE relname = 'scim_users'"
            )
            if row is not None and row["n_tup_ins"] >= USERS:
                return int(row["read"])
            await asyncio.sleep(0.1)
            await db.execute("SELECT pg_stat_clear_snapshot()")
        raise AssertionError("the servers never reported their statistics")
    finally:
        await db.close()


async def _log_partitions(url: str) -> set[str]:
    db = await asyncpg.connect(url)
    try:
        rows = await db.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'provisioning_log'::regclass"
        )
        return {r["relname"] for r in rows}
    finally:
        await db.close()


async def test_partition_upkeep_runs_in_one_of_two_processes_starting_together(
    pg_server_url: str, tmp_path: Path
) -> None:
    async with deployment(pg_server_url, tmp_path) as deployed:
        complete = await _log_partitions(deployed.url)
        today = datetime.now(UTC).date()
        ahead = {
            f"provisioning_log_{today + timedelta(days=d):%Y%m%d}" for d in range(2, 8)
        } & complete
        holder = await asyncpg.connect(deployed.url)
        try:
            for name in sorted(ahead):
                await holder.execute(f'DROP TABLE "{name}"')
            await holder.execute(
                "INSERT INTO scim_page_positions (org_id, walk, start_index, seq, expires_at) "
                "VALUES ($1, $2, 101, 100, now() - interval '1 minute')",
                deployed.org_id,
                bytes(32),
            )
            # Another process is in the middle of upkeep: both start, neither touches it.
            assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", UPKEEP_LOCK)
            waiting = await deployed.gateways.start(2)
            assert await _log_partitions(deployed.url) == complete - ahead
            assert await holder.fetchval("SELECT count(*) FROM scim_page_positions") == 1
            for gateway in waiting:
                assert "another process holds the lock; skipped" in gateway.output()
            await holder.execute("SELECT pg_advisory_unlock($1)", UPKEEP_LOCK)
            await asyncio.gather(*(g.stop() for g in waiting))

            # Two start together: one does it all, the other skips or finds nothing to do.
            racing = await deployed.gateways.start(2)
            assert await _log_partitions(deployed.url) == complete
            assert await holder.fetchval("SELECT count(*) FROM scim_page_positions") == 0
        finally:
            await holder.close()
        created = [g for g in racing if f"{len(ahead)} partitions created" in g.output()]
        assert len(created) == 1, [g.output() for g in racing]
        assert "partitions created" not in next(g for g in racing if g not in created).output()

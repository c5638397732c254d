"""Migrations: in order, once, under a lock; serving refuses a database it does not match."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from gateway.migrate import Migration, MigrationError, check_schema, load_migrations, migrate
from gateway.store import orgs as org_store
from gateway.store import provisioning_log as log_store
from gateway.store import tokens as token_store
from gateway.store.provisioning_log import LogFilter, LogRow


async def test_migrate_applies_all_then_is_a_no_op(fresh_database_url: str) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        applied = await migrate(conn)
        assert applied == [m.version for m in load_migrations()]
        assert await migrate(conn) == []
        await check_schema(conn)
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert {"orgs", "scim_tokens", "provisioning_log", "schema_migrations"} <= tables
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_once(fresh_database_url: str) -> None:
    conns = [await asyncpg.connect(fresh_database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(r) for r in results) == [0, 0, 0, len(load_migrations())]
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(
            load_migrations()
        )
    finally:
        for c in conns:
            await c.close()


async def test_unmigrated_database_is_refused(fresh_database_url: str) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        with pytest.raises(MigrationError, match="run `python -m gateway migrate`"):
            await check_schema(conn)
    finally:
        await conn.close()


async def test_database_ahead_of_the_code_is_refused(fresh_database_url: str) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        future = [
            *load_migrations(),
            Migration(len(load_migrations()) + 1, "from_the_future", "SELECT 1"),
        ]
        await migrate(conn, future)
        with pytest.raises(MigrationError, match="newer version of the gateway"):
            await check_schema(conn)
        with pytest.raises(MigrationError, match="newer version"):
            await migrate(conn)
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(fresh_database_url: str) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await migrate(conn)
        first = load_migrations()[0]
        edited = [
            Migration(first.version, first.name, first.sql + "\n-- edited"),
            *load_migrations()[1:],
        ]
        with pytest.raises(MigrationError, match="was changed after it was applied"):
            await check_schema(conn, edited)
    finally:
        await conn.close()


async def test_a_failing_migration_rolls_back_everything(fresh_database_url: str) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        broken = [
            *load_migrations(),
            Migration(len(load_migrations()) + 1, "broken", "SELECT nope"),
        ]
        with pytest.raises(asyncpg.PostgresError):
            await migrate(conn, broken)
        assert await conn.fetchval("SELECT to_regclass('orgs')") is None
    finally:
        await conn.close()


async def test_scale_out_migration_keeps_the_log_and_the_jobs(fresh_database_url: str) -> None:
    """0011 (Citus keys) on a database with log rows of no org and current sync jobs:
    the rows stay, those of no org under the nil org id and read back as of no org,
    and the jobs go on (a token's next request continues its job)."""
    migrations = load_migrations()
    scale_out = next(m.version for m in migrations if m.name == "scale_out")
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await migrate(conn, [m for m in migrations if m.version < scale_out])
        org = await org_store.create_org(conn, "acme")
        _, token = await token_store.create_token(conn, org.id)
        await log_store.ensure_partitions(conn)
        now = datetime.now(UTC)
        for org_id, token_id in ((None, None), (org.id, token.id), (None, None)):
            row = LogRow(
                occurred_at=now, request_id="r", method="GET", path="/Users", query="",
                status=200 if org_id else 401, duration_ms=1.0, org_id=org_id,
                token_id=token_id, event="Look up user",
            )  # fmt: skip
            await log_store.record_request(conn, row)
        job = await conn.fetchval("SELECT job_id FROM sync_jobs WHERE token_id = $1", token.id)
        assert job is not None

        assert await migrate(conn) == [m.version for m in migrations if m.version >= scale_out]
        assert await conn.fetchval(
            "SELECT array_agg(org_id ORDER BY id) FROM provisioning_log"
        ) == [uuid.UUID(int=0), org.id, uuid.UUID(int=0)]
        unattributed, _ = await log_store.list_log(conn, None, LogFilter(), limit=10)
        assert [(r.org_id, r.status) for r in unattributed] == [(None, 401), (None, 401)]
        later = now + timedelta(seconds=1)
        await log_store.record_request(
            conn, replace(row, occurred_at=later, org_id=org.id, token_id=token.id, status=200)
        )
        assert await conn.fetchval("SELECT count(*) FROM sync_jobs") == 1
        assert (
            await conn.fetchval(
                "SELECT job_id FROM provisioning_log WHERE org_id = $1 AND occurred_at > $2",
                org.id,
                now,
            )
            == job
        )
    finally:
        await conn.close()

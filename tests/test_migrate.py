"""Migrations: in order, once, under a lock; serving refuses a database it does not match."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from gateway.migrate import Migration, MigrationError, check_schema, load_migrations, migrate


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

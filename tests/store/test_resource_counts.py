"""The per-org resource counters: exact, and no single row that creates queue on (issue 12)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg

from gateway.scim.resource import USER_TYPE, Normalizer
from gateway.scim.users import to_write
from gateway.store import directory
from tests.conftest import OrgWithToken
from tests.payloads import okta_create_user

INSERT_USER = (
    "INSERT INTO scim_users (org_id, id, user_name, user_name_ci, external_id, active, "
    "display_name, emails_ci, attrs, attrs_ci, created_at, updated_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
)


async def insert(conn: asyncpg.Connection, org_id: uuid.UUID, name: str) -> None:
    user = to_write(Normalizer(USER_TYPE).document(okta_create_user(name)))
    now = datetime.now(UTC)
    await conn.execute(INSERT_USER, org_id, uuid.uuid4(), *user.columns(), now, now)


async def two_connections_on_different_shards(url: str) -> list[asyncpg.Connection]:
    """Backends whose pid modulo 16 (the counter's shard) differ."""
    conns = [await asyncpg.connect(url)]
    first_shard = await conns[0].fetchval("SELECT pg_backend_pid() % 16")
    while True:
        conn = await asyncpg.connect(url)
        if await conn.fetchval("SELECT pg_backend_pid() % 16") != first_shard:
            return [*conns, conn]
        conns.append(conn)  # closed below with the rest
        if len(conns) > 40:
            raise AssertionError("no two backends on different counter shards")


async def test_a_create_does_not_wait_for_another_open_create_in_the_org(
    database_url: str, acme: OrgWithToken
) -> None:
    conns = await two_connections_on_different_shards(database_url)
    first, second = conns[0], conns[-1]
    try:
        async with first.transaction():
            await insert(first, acme.org.id, "one@example.com")
            # Before sharding, this waited on the org's counter row until `first` committed.
            await second.execute("SET lock_timeout = '2s'")
            await asyncio.wait_for(insert(second, acme.org.id, "two@example.com"), 10)
        assert await directory.count_users(first, acme.org.id) == 2
    finally:
        for conn in conns:
            await conn.close()


async def test_counts_stay_exact_across_backends(
    database_url: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    conns = [await asyncpg.connect(database_url) for _ in range(6)]
    try:
        for i in range(5):
            await asyncio.gather(
                *(
                    insert(conn, acme.org.id, f"u{n}-{i}@example.com")
                    for n, conn in enumerate(conns)
                )
            )
        # Deletes on other backends than the creates: a shard may go below zero.
        await conns[0].execute(
            "DELETE FROM scim_users WHERE org_id = $1 AND user_name_ci LIKE 'u1-%'", acme.org.id
        )
        await conns[3].execute(
            "DELETE FROM scim_users WHERE org_id = $1 AND user_name_ci = 'u5-4@example.com'",
            acme.org.id,
        )
    finally:
        for conn in conns:
            await conn.close()
    actual = await db.fetchval("SELECT count(*) FROM scim_users WHERE org_id = $1", acme.org.id)
    assert actual == 6 * 5 - 5 - 1
    assert await directory.count_users(db, acme.org.id) == actual

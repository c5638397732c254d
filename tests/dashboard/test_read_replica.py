"""DATABASE_READ_URL: the dashboard's read-only pages read a replica; sign-in, sessions
and tokens stay on the primary. The "replica" is a second database on the test server,
seeded with data the primary does not have, so every page shows where it read from."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import asyncpg
import pytest
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.appkeys import DB_POOL, DB_READ_POOL
from gateway.settings import Settings
from gateway.store import tokens as token_store
from tests.conftest import OrgWithToken, create_database, drop_database
from tests.dashboard.conftest import Client, SignedIn, signed_in
from tests.dashboard.test_logs import next_row, okta
from tests.payloads import okta_create_user


@dataclass
class Replica:
    url: str
    conn: asyncpg.Connection
    # The org as the replica has it (same id as the primary's), with a token there.
    org: OrgWithToken
    scim: Client


@pytest.fixture
async def replica(
    pg_server_url: str,
    aiohttp_client: AiohttpClient,
    acme: OrgWithToken,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Replica]:
    url = await create_database(pg_server_url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO orgs (id, slug, name) VALUES ($1, $2, $3)",
            acme.org.id, acme.org.slug, acme.org.name,
        )  # fmt: skip
        token, info = await token_store.create_token(conn, acme.org.id, note="replica")
        # Okta traffic written straight to the replica's database, by an app of its own.
        scim = await aiohttp_client(
            create_app(Settings(database_url=url, data_dir=tmp_path_factory.mktemp("replica")))
        )
        yield Replica(url, conn, replace(acme, token=token, token_id=info.id), scim)
    finally:
        await conn.close()
        await drop_database(pg_server_url, url)


@pytest.fixture
async def on_replica(
    aiohttp_client: AiohttpClient,
    dashboard_settings: Settings,
    db: asyncpg.Connection,
    acme: OrgWithToken,
    replica: Replica,
) -> SignedIn:
    app = create_app(replace(dashboard_settings, database_read_url=replica.url))
    # Signing in writes a session: the admin exists on the primary only.
    return await signed_in(await aiohttp_client(app), db, acme)


async def test_read_only_pages_read_the_replica(
    on_replica: SignedIn, replica: Replica, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    client = on_replica.client
    assert client.app[DB_READ_POOL] is not client.app[DB_POOL]
    assert (
        await okta(client, acme, "POST", "/Users", okta_create_user("primary-only@acme.example"))
        == 201
    )
    assert (
        await okta(
            replica.scim,
            replica.org,
            "POST",
            "/Users",
            okta_create_user("replica-only@acme.example"),
        )
        == 201
    )
    replica_user = await replica.conn.fetchval("SELECT id FROM scim_users")

    users = await (await client.get("/dashboard/users")).text()
    assert "replica-only@acme.example" in users
    assert "primary-only@acme.example" not in users
    assert (await client.get(f"/dashboard/users/{replica_user}")).status == 200
    logs = await (await client.get("/dashboard/logs")).text()
    assert "replica-only@acme.example" in logs
    assert "primary-only@acme.example" not in logs
    assert "<span data-chart-total>1</span>" in logs
    first_sync = await (await client.get("/dashboard/first-sync")).text()
    assert 'data-count="Create user|success">1<' in first_sync

    # Writes go to the primary: the session, and a token generated and listed at once.
    assert await db.fetchval("SELECT count(*) FROM dashboard_sessions") == 1
    assert await replica.conn.fetchval("SELECT count(*) FROM dashboard_sessions") == 0
    generated = await client.post(
        "/dashboard/settings/scim/tokens",
        data={"note": "rotation"},
        headers={"Accept": "application/json", "X-CSRF-Token": on_replica.csrf},
    )
    assert generated.status == 200
    token_id = uuid.UUID((await generated.json())["id"])
    assert await db.fetchval("SELECT note FROM scim_tokens WHERE id = $1", token_id) == "rotation"
    assert (
        await replica.conn.fetchval("SELECT count(*) FROM scim_tokens WHERE id = $1", token_id) == 0
    )
    assert "rotation" in await (await client.get("/dashboard/settings/scim")).text()
    revoked = await client.post(
        f"/dashboard/settings/scim/tokens/{token_id}/revoke",
        headers={"X-CSRF-Token": on_replica.csrf},
        allow_redirects=False,
    )
    assert revoked.status == 303
    assert await db.fetchval(
        "SELECT revoked_at IS NOT NULL FROM scim_tokens WHERE id = $1", token_id
    )


async def test_the_live_log_tails_the_replica(on_replica: SignedIn, replica: Replica) -> None:
    stream = await on_replica.client.get(
        "/dashboard/logs/live", headers={"Accept": "text/event-stream"}
    )
    await asyncio.sleep(0.2)
    assert (
        await okta(
            replica.scim, replica.org, "POST", "/Users", okta_create_user("tail@acme.example")
        )
        == 201
    )
    row = await next_row(stream)
    assert "tail@acme.example" in row["html"]
    stream.close()


async def test_without_a_read_url_pages_read_the_primary(
    admin: SignedIn, acme: OrgWithToken
) -> None:
    client = admin.client
    assert client.app[DB_READ_POOL] is client.app[DB_POOL]
    assert (
        await okta(client, acme, "POST", "/Users", okta_create_user("primary-only@acme.example"))
        == 201
    )
    assert "primary-only@acme.example" in await (await client.get("/dashboard/users")).text()
    assert "primary-only@acme.example" in await (await client.get("/dashboard/logs")).text()

"""Fixtures: a real PostgreSQL (embedded, or TEST_DATABASE_URL's server), the real app factory."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner
from hypothesis import settings as hypothesis_settings
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.appkeys import SETTINGS
from gateway.embedded import throwaway_postgres
from gateway.migrate import migrate
from gateway.server import server_options
from gateway.settings import Settings
from gateway.store import orgs as org_store
from gateway.store import tokens as token_store

PUBLIC_BASE_URL = "https://scim.example.test"

# `make fuzz` (--hypothesis-profile=fuzz): long random runs of the stateful test
# (tests/scim/test_stateful.py), which otherwise runs a bounded, seeded one.
hypothesis_settings.register_profile(
    "fuzz", max_examples=300, stateful_step_count=60, deadline=None, print_blob=True
)


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


class GatewayTestServer(TestServer):
    """aiohttp's test server with the protocol options `serve` uses (header timeout, …)."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return web.AppRunner(self.app, **{**kwargs, **server_options(self.app[SETTINGS])})


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A DSN on the server the suite runs against; its database is only used to create others."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    tmp = Path(tempfile.mkdtemp(prefix="gateway-test-pg-"))
    tmp.chmod(0o755)  # as root, the embedded server runs as a user of its own
    try:
        with throwaway_postgres(tmp) as url:
            yield url
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def create_database(server_url: str, *, migrated: bool = True) -> str:
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    if migrated:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()
    return url


async def database_with_org(server_url: str) -> tuple[str, org_store.Org, str]:
    """A new migrated database with the org "acme" and a token of it valid ten days:
    (its URL, the org, the token), for tests that serve it from other processes."""
    url = await create_database(server_url)
    conn = await asyncpg.connect(url)
    try:
        org = await org_store.create_org(conn, "acme")
        token, _ = await token_store.create_token(conn, org.id, expires_in=timedelta(days=10))
    finally:
        await conn.close()
    return url, org, token


async def drop_database(server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def database_url(pg_server_url: str) -> Iterator[str]:
    """One migrated database for the session; tests start from empty tables."""
    url = asyncio.run(create_database(pg_server_url))
    yield url
    asyncio.run(drop_database(pg_server_url, url))


@pytest.fixture
async def fresh_database_url(pg_server_url: str) -> AsyncIterator[str]:
    """An empty, unmigrated database of the test's own."""
    url = await create_database(pg_server_url, migrated=False)
    yield url
    await drop_database(pg_server_url, url)


async def empty_tables(conn: asyncpg.Connection) -> None:
    tables = await conn.fetch(
        "SELECT quote_ident(tablename) AS name FROM pg_tables "
        "WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
    )
    await conn.execute(
        "TRUNCATE " + ", ".join(t["name"] for t in tables) + " RESTART IDENTITY CASCADE"
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    await empty_tables(conn)
    yield conn
    await conn.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # data_dir holds the provisioning-log spool: one of the test's own. The suite
    # fires hundreds of simultaneous requests of one org to test races; admission
    # limits (tested in tests/reliability) would turn those into 429s and 503s.
    return Settings(
        database_url=database_url,
        public_base_url=PUBLIC_BASE_URL,
        data_dir=tmp_path,
        rate_limit_per_second=1e6,
        rate_limit_burst=1_000_000,
        org_pool_share_percent=100,
        max_queued_requests=1_000_000,
        db_acquire_timeout=60.0,
    )


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings)


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, app: web.Application, db: asyncpg.Connection
) -> TestClient[web.Request, web.Application]:
    client: TestClient[web.Request, Any] = await aiohttp_client(GatewayTestServer(app))
    return cast(TestClient[web.Request, web.Application], client)


@dataclass(frozen=True)
class OrgWithToken:
    org: org_store.Org
    token: str
    token_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_org(conn: asyncpg.Connection, slug: str) -> OrgWithToken:
    org = await org_store.create_org(conn, slug)
    token, info = await token_store.create_token(conn, org.id, note="test")
    return OrgWithToken(org=org, token=token, token_id=info.id)


@pytest.fixture
async def acme(db: asyncpg.Connection) -> OrgWithToken:
    return await make_org(db, "acme")


@pytest.fixture
async def globex(db: asyncpg.Connection) -> OrgWithToken:
    return await make_org(db, "globex")


@pytest.fixture
def base(settings: Settings) -> str:
    return settings.scim_base_path


async def revoke_settled() -> None:
    """Wait out the moment a process keeps reusing a token's authentication
    (AUTH_CACHE_MS): after it, a revoke or expiry holds on every request."""
    await asyncio.sleep(Settings().auth_cache_seconds)

"""A PostgreSQL of the reliability tests' own, which they stop, restart and take away."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.embedded import ControlledPostgres
from gateway.migrate import migrate
from gateway.settings import Settings
from tests.conftest import PUBLIC_BASE_URL, GatewayTestServer, empty_tables


@pytest.fixture(scope="session")
def controlled_pg() -> Iterator[ControlledPostgres]:
    """Never the shared server: this one is stopped and started by the tests."""
    tmp = Path(tempfile.mkdtemp(prefix="gateway-chaos-pg-"))
    tmp.chmod(0o755)  # as root, the embedded server runs as a user of its own
    server = ControlledPostgres(tmp)
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
async def controlled_db(controlled_pg: ControlledPostgres) -> AsyncIterator[asyncpg.Connection]:
    """A migrated, emptied database on the controlled server, which is running."""
    controlled_pg.start()
    conn = await asyncpg.connect(controlled_pg.url)
    await migrate(conn)
    await empty_tables(conn)
    yield conn
    controlled_pg.start()  # a test that stopped it leaves it running for the next
    conn.terminate()  # it may have been cut off by a stop


@pytest.fixture
def controlled_settings(controlled_pg: ControlledPostgres, tmp_path: Path) -> Settings:
    return replace(
        Settings(
            database_url=controlled_pg.url, public_base_url=PUBLIC_BASE_URL, data_dir=tmp_path
        ),
        db_connect_timeout=1.0,
        db_acquire_timeout=0.5,
        db_retry_interval=0.05,
        db_lock_timeout_ms=200,
        retry_after_seconds=3,
    )


Client = TestClient[web.Request, Any]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def make_client(aiohttp_client: AiohttpClient, controlled_settings: Settings) -> MakeClient:
    """A test client of an app on the controlled server; keyword arguments change settings."""

    async def make(
        extend: Callable[[web.Application], None] | None = None, **changes: Any
    ) -> Client:
        app = create_app(replace(controlled_settings, **changes), extend_scim=extend)
        client: Client = await aiohttp_client(GatewayTestServer(app))
        return client

    return make

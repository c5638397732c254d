"""A revoke refuses the token on every worker within one second (issue 12).

Each process reuses a token's authentication for AUTH_CACHE_MS; nothing tells the
other workers about a revoke. Two real workers of `serve --workers 2` share the
port: requests on new connections land on both, before and after the revoke.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import asyncpg

from gateway.store import orgs as org_store
from gateway.store import tokens as token_store
from tests.conftest import create_database, drop_database
from tests.served import Gateways


async def status_on_a_new_connection(url: str, token: str) -> int:
    # A new connection each time, so that the kernel spreads them over both workers.
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
        http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        return resp.status


async def test_a_revoke_refuses_the_token_on_every_worker_within_a_second(
    pg_server_url: str, tmp_path: Path
) -> None:
    url = await create_database(pg_server_url)
    conn = await asyncpg.connect(url)
    try:
        org = await org_store.create_org(conn, "acme")
        token, info = await token_store.create_token(conn, org.id, expires_in=timedelta(days=1))
        async with Gateways(url, tmp_path) as gateways:
            (gateway,) = await gateways.start(1, workers=2)
            spc = f"{gateway.base}/ServiceProviderConfig"
            # Both workers have the token's authentication fresh in their caches.
            assert {await status_on_a_new_connection(spc, token) for _ in range(40)} == {200}

            await token_store.revoke_org_token(conn, org.id, info.id)
            revoked = time.monotonic()
            late: list[int] = []
            while time.monotonic() - revoked < 1.6:
                status = await status_on_a_new_connection(spc, token)
                if time.monotonic() - revoked > 1.0:
                    late.append(status)
            assert len(late) >= 10
            assert set(late) == {401}, late
    finally:
        await conn.close()
        await drop_database(pg_server_url, url)

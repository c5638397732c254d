"""A revoke refuses the token on every worker within one second (issue 12).

Each process reuses a token's authentication for AUTH_CACHE_MS; nothing tells the
other workers about a revoke. Two real workers of `serve --workers 2` share the
port: requests on new connections land on both, before and after the revoke.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import asyncpg

from gateway.settings import DEFAULT_SCIM_BASE_PATH
from gateway.store import orgs as org_store
from gateway.store import tokens as token_store
from tests.conftest import create_database, drop_database
from tests.test_metrics import free_port


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
    org = await org_store.create_org(conn, "acme")
    token, info = await token_store.create_token(conn, org.id, expires_in=timedelta(days=1))
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "GATEWAY_DATA_DIR": str(tmp_path / "var"),
        "METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
        # As many requests as the loop sends, without 429s in the way.
        "SCIM_RATE_LIMIT_PER_SECOND": "100000",
        "SCIM_RATE_LIMIT_BURST": "100000",
    }
    with (tmp_path / "gateway.log").open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "gateway", "serve", "--workers", "2", "--port", str(port)),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    spc = f"http://127.0.0.1:{port}{DEFAULT_SCIM_BASE_PATH}/ServiceProviderConfig"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if await status_on_a_new_connection(spc, token) == 200:
                    break
            except aiohttp.ClientConnectionError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "gateway.log").read_text()
            await asyncio.sleep(0.2)
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
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 45)
            except TimeoutError:
                process.kill()
                await process.wait()
        await drop_database(pg_server_url, url)

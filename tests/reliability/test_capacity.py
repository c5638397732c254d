"""No client can starve the others: stalled bodies hold no connection, orgs get a share, tokens a rate."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiohttp
import asyncpg
import pytest

from gateway.app import create_app
from gateway.appkeys import DB_POOL, LOG_BATCH, LOG_SPOOL
from gateway.embedded import ControlledPostgres
from gateway.server import serve
from gateway.settings import Settings
from tests.conftest import OrgWithToken, make_org
from tests.metrics_text import Scrape
from tests.payloads import OKTA_HEADERS, dumps, okta_create_user
from tests.reliability.conftest import Client, MakeClient
from tests.reliability.routes import Holder
from tests.served import free_port

BASE = "/api/sch/scim/v2"


@pytest.fixture
async def orgs(controlled_db: asyncpg.Connection) -> tuple[OrgWithToken, OrgWithToken]:
    return await make_org(controlled_db, "acme"), await make_org(controlled_db, "globex")


async def stall(
    client: Client, org: OrgWithToken
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sends its headers and half its body, then nothing."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    body = dumps(okta_create_user(user_name=f"stalled{id(writer)}@example.com"))
    writer.write(
        (
            f"POST {BASE}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {org.token}\r\n"
            f"Content-Type: application/scim+json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body[: len(body) // 2]
    )
    await writer.drain()
    return reader, writer


async def test_stalled_bodies_hold_no_connection_and_other_orgs_are_served(
    make_client: MakeClient, orgs: tuple[OrgWithToken, OrgWithToken]
) -> None:
    stalling, polite = orgs
    client = await make_client(db_pool_min_size=1, db_pool_max_size=4, body_timeout=3.0)
    stalled = [await stall(client, stalling) for _ in range(100)]
    headers = {**OKTA_HEADERS, **polite.headers}
    for i in range(20):
        resp = await client.post(
            f"{BASE}/Users", headers=headers, data=dumps(okta_create_user(f"p{i}@example.com"))
        )
        assert resp.status == 201
        assert (await client.get(f"{BASE}/Users?count=1", headers=headers)).status == 200
    pool = client.app[DB_POOL]
    assert pool.get_size() <= 4
    # Every stalled body is answered 408 and its connection closed.
    for reader, writer in stalled:
        answer = await asyncio.wait_for(reader.read(), timeout=30)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        assert b"application/scim+json" in answer
        writer.close()


async def test_slow_headers_and_idle_connections_are_closed(make_client: MakeClient) -> None:
    client = await make_client(header_timeout=0.5)
    slow_reader, slow_writer = await asyncio.open_connection(client.server.host, client.server.port)
    slow_writer.write(f"GET {BASE}/Users HTTP/1.1\r\nHost: x\r\n".encode())  # no blank line
    idle_reader, idle_writer = await asyncio.open_connection(client.server.host, client.server.port)
    for reader, writer in ((slow_reader, slow_writer), (idle_reader, idle_writer)):
        assert await asyncio.wait_for(reader.read(), timeout=30) == b""
        writer.close()


async def test_a_token_over_its_rate_gets_429_with_retry_after(
    make_client: MakeClient, orgs: tuple[OrgWithToken, OrgWithToken]
) -> None:
    fast, other = orgs
    client = await make_client(rate_limit_per_second=1.0, rate_limit_burst=5)
    statuses = []
    for _ in range(7):
        resp = await client.get(f"{BASE}/Users", headers=fast.headers)
        statuses.append(resp.status)
    assert statuses[:5] == [200] * 5
    assert 429 in statuses[5:]
    resp = await client.get(f"{BASE}/Users", headers=fast.headers)
    assert resp.status == 429
    assert resp.headers["Retry-After"].isdigit()
    body = await resp.json(content_type=None)
    assert body["status"] == "429"
    assert "per second" in body["detail"]
    assert (await client.get(f"{BASE}/Users", headers=other.headers)).status == 200


async def test_one_org_cannot_take_the_whole_pool(
    make_client: MakeClient, orgs: tuple[OrgWithToken, OrgWithToken]
) -> None:
    greedy, other = orgs
    holder = Holder()
    client = await make_client(
        holder.add, db_pool_min_size=1, db_pool_max_size=4, org_pool_share_percent=50
    )
    # The first request files the token under its org.
    assert (await client.get(f"{BASE}/Users", headers=greedy.headers)).status == 200
    held = [
        asyncio.create_task(client.get(f"{BASE}/_test/hold", headers=greedy.headers))
        for _ in range(2)
    ]
    await holder.until_holding(2)
    third = await client.get(f"{BASE}/Users", headers=greedy.headers)
    assert third.status == 503
    assert third.headers["Retry-After"].isdigit()
    assert "this org" in (await third.json(content_type=None))["detail"]
    for _ in range(3):
        assert (await client.get(f"{BASE}/Users", headers=other.headers)).status == 200
    holder.release.set()
    assert [(await t).status for t in held] == [200, 200]


async def test_sigterm_drains_readyz_first_then_finishes_requests_then_closes_the_pool(
    controlled_settings: Settings, orgs: tuple[OrgWithToken, OrgWithToken]
) -> None:
    org = orgs[0]
    settings = replace(
        controlled_settings, port=free_port(), shutdown_drain_seconds=0.5, shutdown_timeout=10
    )
    holder = Holder()
    app = create_app(settings, extend_scim=holder.add)
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, settings, stop))
    url = f"http://127.0.0.1:{settings.port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(f"{url}/readyz") as ready:
                    if ready.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
        in_flight = asyncio.create_task(session.get(f"{url}{BASE}/_test/hold", headers=org.headers))
        await holder.until_holding(1)
        stop.set()
        await asyncio.sleep(0.05)
        async with session.get(f"{url}/readyz") as draining:
            assert draining.status == 503
            assert (await draining.json())["status"] == "draining"
        async with session.get(f"{url}{BASE}/Users", headers=org.headers) as still:
            assert still.status == 200  # served while draining
        await asyncio.sleep(0.6)
        assert not server.done()  # waiting for the request in flight
        assert not app[DB_POOL].is_closing()
        holder.release.set()
        response = await in_flight
        assert response.status == 200
        await asyncio.wait_for(server, timeout=30)
    assert app[DB_POOL].is_closing()


async def test_shed_requests_get_their_rows_without_a_connection_each(
    make_client: MakeClient,
    orgs: tuple[OrgWithToken, OrgWithToken],
    controlled_db: asyncpg.Connection,
) -> None:
    flooder, _ = orgs
    token = "scrape-" + "x" * 20
    client = await make_client(rate_limit_per_second=1.0, rate_limit_burst=1, metrics_token=token)

    async def acquisitions() -> float:
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        return Scrape(await resp.text()).value("scim_db_pool_acquire_seconds_count")

    assert (await client.get(f"{BASE}/Users", headers=flooder.headers)).status == 200
    before = await acquisitions()
    shed = await asyncio.gather(
        *(client.get(f"{BASE}/Users", headers=flooder.headers) for _ in range(60))
    )
    assert {r.status for r in shed} == {429}
    await client.app[LOG_BATCH].drained()
    # Their rows went many to a statement: not a pooled connection each (60).
    assert await acquisitions() - before <= 15
    request_ids = [r.headers["X-Request-Id"] for r in shed]
    rows = await controlled_db.fetch(
        "SELECT status FROM provisioning_log WHERE request_id = ANY($1::text[])", request_ids
    )
    assert [r["status"] for r in rows] == [429] * 60


async def test_shed_rows_are_spooled_while_the_database_is_away(
    make_client: MakeClient,
    orgs: tuple[OrgWithToken, OrgWithToken],
    controlled_db: asyncpg.Connection,
    controlled_pg: ControlledPostgres,
) -> None:
    flooder, _ = orgs
    client = await make_client(rate_limit_per_second=1.0, rate_limit_burst=1)
    assert (await client.get(f"{BASE}/Users", headers=flooder.headers)).status == 200
    controlled_pg.stop("fast")
    shed = [await client.get(f"{BASE}/Users", headers=flooder.headers) for _ in range(5)]
    assert {r.status for r in shed} <= {429, 503}
    await client.app[LOG_BATCH].drained()
    assert client.app[LOG_SPOOL].counts.spooled >= 5
    controlled_pg.start()
    conn = await asyncpg.connect(controlled_pg.url)
    try:
        request_ids = [r.headers["X-Request-Id"] for r in shed]
        for _ in range(200):  # replayed by the spool's tick once the database answers
            found = await conn.fetchval(
                "SELECT count(*) FROM provisioning_log WHERE request_id = ANY($1::text[])",
                request_ids,
            )
            if found == len(request_ids):
                break
            await asyncio.sleep(0.05)
        assert found == len(request_ids)
    finally:
        await conn.close()

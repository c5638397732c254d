"""No answered request without its row: outages, dead connections, odd characters,
clients that hang up, and metrics that count exactly what the log holds."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.appkeys import LOG_BATCH, METRICS
from gateway.settings import Settings
from tests.conftest import PUBLIC_BASE_URL, OrgWithToken
from tests.payloads import okta_create_user

Client = TestClient[web.Request, web.Application]
SCIM_JSON = {"Content-Type": "application/scim+json"}


class PgProxy:
    """A TCP proxy in front of the test's PostgreSQL that can cut the database off.

    `cut()` closes every open connection and refuses new ones, as a stopped or
    unreachable server does; `restore()` lets connections through again.
    """

    def __init__(self, server_url: str) -> None:
        parts = urlsplit(server_url)
        socket_dir = parse_qs(parts.query).get("host", [None])[0]
        self._unix = f"{socket_dir}/.s.PGSQL.{parts.port or 5432}" if socket_dir else None
        self._tcp = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._database = parts.path.lstrip("/")
        self._user = parts.username or "postgres"
        self._down = False
        self._pipes: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> PgProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"postgresql://{self._user}@127.0.0.1:{port}/{self._database}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:
            writer.close()
            return
        if self._unix:
            up_reader, up_writer = await asyncio.open_unix_connection(self._unix)
        else:
            up_reader, up_writer = await asyncio.open_connection(*self._tcp)
        self._pipes |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        self._down = True
        for pipe in self._pipes:
            pipe.close()
        self._pipes.clear()

    def restore(self) -> None:
        self._down = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


async def rows_by_request(db: asyncpg.Connection) -> dict[str, int]:
    return {
        r["request_id"]: r["n"]
        for r in await db.fetch(
            "SELECT request_id, count(*) AS n FROM provisioning_log GROUP BY request_id"
        )
    }


async def test_a_database_outage_loses_no_row(
    aiohttp_client: AiohttpClient,
    database_url: str,
    db: asyncpg.Connection,
    acme: OrgWithToken,
    tmp_path: Path,
) -> None:
    proxy = await PgProxy(database_url).start()
    settings = Settings(database_url=proxy.url, public_base_url=PUBLIC_BASE_URL, data_dir=tmp_path)
    client = await aiohttp_client(create_app(settings))
    headers = {**acme.headers, **SCIM_JSON}
    answered: list[tuple[str, int]] = []

    async def create(i: int) -> None:
        body = json.dumps(okta_create_user(f"user{i}@example.com"))
        resp = await client.post("/api/sch/scim/v2/Users", headers=headers, data=body)
        answered.append((resp.headers["X-Request-Id"], resp.status))

    try:
        for i in range(3):
            await create(i)
        proxy.cut()
        for i in range(3, 8):
            await create(i)
        assert {status for _, status in answered[3:]} <= {500, 503}
        # Rows of requests answered 503 without a connection are queued, then spooled.
        await client.app[LOG_BATCH].drained()
        assert any(tmp_path.joinpath("log-spool").iterdir())
        proxy.restore()
        for i in range(8, 11):
            await create(i)
        # The spool is replayed within a second or two of the database answering.
        for _ in range(100):
            logged = await rows_by_request(db)
            if len(logged) == len(answered):
                break
            await asyncio.sleep(0.1)
    finally:
        await proxy.close()
    assert logged == {request_id: 1 for request_id, _ in answered}
    order = [
        r["request_id"]
        for r in await db.fetch("SELECT request_id FROM provisioning_log ORDER BY occurred_at, id")
    ]
    assert order == [request_id for request_id, _ in answered]
    failed = await db.fetch(
        "SELECT status, code, org_id, job_id FROM provisioning_log WHERE status >= 500"
    )
    assert len(failed) == 5
    assert {(r["org_id"], r["job_id"] is not None) for r in failed} == {(acme.org.id, True)}
    metrics = client.app[METRICS].exposition(None).decode()
    assert "scim_provisioning_log_rows_spooled_total 5.0" in metrics
    assert "scim_provisioning_log_rows_replayed_total 5.0" in metrics


async def test_a_terminated_backend_costs_no_failure(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    assert (await client.get(f"{base}/Users?count=1", headers=acme.headers)).status == 200
    terminated = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'scim-gateway' AND pid <> pg_backend_pid()"
    )
    assert terminated >= 1
    statuses = [
        (await client.get(f"{base}/Users?count=1", headers=acme.headers)).status for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    assert await db.fetchval("SELECT count(*) FROM provisioning_log") == 4
    assert await db.fetchval("SELECT count(*) FROM provisioning_log WHERE status >= 500") == 0


async def test_nul_and_lone_surrogates_never_lose_the_row(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    headers = {**acme.headers, **SCIM_JSON}
    bodies = [
        '{"userName": "a\\u0000b@example.com"}',
        '{"userName": "\\ud800@example.com", "name": {"givenName": "x", "familyName": "y"}}',
        '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "\\u0000": 1}',
        '{"userName": "c@example.com", "displayName": "\\udfff"}',
    ]
    ids = []
    for body in bodies:
        resp = await client.post(f"{base}/Users", headers=headers, data=body.encode())
        assert resp.status < 600
        ids.append(resp.headers["X-Request-Id"])
    for query in ('userName eq "a\u0000b"', 'userName eq "\ud800"'):
        resp = await client.get(
            f"{base}/Users",
            params={"filter": query.encode("utf-8", "surrogatepass").decode("latin-1")},
            headers=acme.headers,
        )
        ids.append(resp.headers["X-Request-Id"])
    logged = await rows_by_request(db)
    assert {i: logged.get(i) for i in ids} == {i: 1 for i in ids}
    stored = await db.fetchval(
        "SELECT request_body FROM provisioning_log WHERE request_id = $1", ids[0]
    )
    assert "a\\u0000b@example.com" in stored


async def test_a_client_that_hangs_up_is_logged_as_such(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    assert client.server.port is not None
    _reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    body = json.dumps(okta_create_user("gone@example.com")).encode()
    writer.write(
        (
            f"POST {base}/Users HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: Bearer {acme.token}\r\nContent-Type: application/scim+json\r\n"
            f"Content-Length: {len(body) + 100}\r\n\r\n"
        ).encode()
        + body[:20]
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    for _ in range(50):
        row = await db.fetchrow("SELECT status, code, event, outcome, org_id FROM provisioning_log")
        if row is not None:
            break
        await asyncio.sleep(0.1)
    assert row is not None
    assert (row["status"], row["code"], row["outcome"]) == (499, "client_closed", "failure")
    assert row["org_id"] == acme.org.id
    assert row["event"] != "Server error"


async def test_broken_forms_of_a_valid_token_are_filed_under_its_org(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    for header in (
        f"Bearer Bearer {acme.token}",
        f'Bearer "{acme.token}"',
        f"Bearer {acme.token}x",
    ):
        resp = await client.get(f"{base}/Users", headers={"Authorization": header})
        assert resp.status == 401
    rows = await db.fetch("SELECT org_id, token_id, code FROM provisioning_log ORDER BY id")
    assert [(r["org_id"], r["token_id"], r["code"]) for r in rows] == [
        (acme.org.id, acme.token_id, "token_double_prefix"),
        (acme.org.id, acme.token_id, "token_wrapped"),
        (acme.org.id, acme.token_id, "token_too_long"),
    ]


_EVENT_LINE = re.compile(
    r'^scim_provisioning_events_total\{event="([^"]+)",outcome="([^"]+)"\} ([0-9.]+)$', re.M
)


async def test_metrics_equal_the_log_counts(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    """After an Okta-shaped run with failures and a duplicate-account warning (decided in
    SQL), the event metric by (event, outcome) is exactly the log's count(*)."""
    headers = {**acme.headers, **SCIM_JSON}
    await client.get(f"{base}/Users?startIndex=1&count=2", headers=headers)
    first = okta_create_user("jane.doe@example.com")
    await client.post(f"{base}/Users", headers=headers, data=json.dumps(first))
    second = okta_create_user("jdoe")
    second["emails"] = [{"primary": True, "value": "Jane.Doe@example.com", "type": "work"}]
    await client.post(f"{base}/Users", headers=headers, data=json.dumps(second))
    missing = okta_create_user("nofamily@example.com")
    del missing["name"]["familyName"]
    await client.post(f"{base}/Users", headers=headers, data=json.dumps(missing))
    await client.post(f"{base}/Users", headers=headers, data=json.dumps(first))  # 409
    await client.get(f"{base}/Users/{uuid.uuid4()}", headers=headers)  # 404
    await client.get(f"{base}/Users", headers={"Authorization": "Bearer nope"})  # 401
    text = client.app[METRICS].exposition(None).decode()
    from_metrics = {
        (event, outcome): int(float(n))
        for event, outcome, n in _EVENT_LINE.findall(text)
        if float(n) > 0
    }
    from_log = {
        (r["event"], r["outcome"]): r["n"]
        for r in await db.fetch(
            "SELECT event, outcome, count(*) AS n FROM provisioning_log GROUP BY event, outcome"
        )
    }
    assert from_metrics == from_log
    assert from_log[("Create user", "warning")] == 1
    assert 'scim_provisioning_warnings_total{code="duplicate_account"} 1.0' in text


async def test_a_huge_user_name_still_gets_its_row(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    """A 1 MiB userName is refused; its log row (target name and key cut) is not lost."""
    body = okta_create_user("x" * (1024 * 1024) + "@example.com")
    resp = await client.post(
        f"{base}/Users",
        headers={**acme.headers, **SCIM_JSON},
        data=io.BytesIO(json.dumps(body).encode()),
    )
    assert 400 <= resp.status < 500
    row = await db.fetchrow(
        "SELECT status, length(target_name) AS n, length(target_key) AS k FROM provisioning_log "
        "WHERE request_id = $1",
        resp.headers["X-Request-Id"],
    )
    assert row is not None
    assert (row["status"], row["n"], row["k"]) == (resp.status, 512, 517)

"""One provisioning-log row per request; a change and its row commit together; no secrets stored."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.scim.body import read_json_object
from gateway.scim.context import logged_change, request_conn
from gateway.scim.errors import ScimError, scim_response
from gateway.settings import Settings
from tests.conftest import OrgWithToken

Client = TestClient[web.Request, web.Application]


async def echo(request: web.Request) -> web.Response:
    return scim_response(await read_json_object(request))


async def change(request: web.Request) -> web.Response:
    """A stand-in for a SCIM write: creates an org and logs in the same transaction."""
    body = await read_json_object(request)
    conn = await request_conn(request)
    async with logged_change(request) as log, conn.transaction():
        await conn.execute("INSERT INTO orgs (slug, name) VALUES ($1, $1)", body["slug"])
        response = scim_response({"slug": body["slug"]}, status=201)
        await log.record(conn, response)
        if body.get("fail") == "after_record":
            raise ScimError(409, "conflict found after the row was written", scim_type="uniqueness")
        if body.get("fail") == "crash":
            raise RuntimeError("boom")
    return response


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("internal detail that must not leak")


def add_test_routes(scim: web.Application) -> None:
    scim.router.add_post("/_test/echo", echo)
    scim.router.add_post("/_test/change", change)
    scim.router.add_get("/_test/boom", boom)


@pytest.fixture
async def test_client(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection
) -> Client:
    return await aiohttp_client(create_app(settings, extend_scim=add_test_routes))


async def rows(db: asyncpg.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in await db.fetch("SELECT * FROM provisioning_log ORDER BY id")]


async def test_every_request_writes_exactly_one_row(
    test_client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    responses = [
        await test_client.get(f"{base}/ServiceProviderConfig", headers=acme.headers),
        await test_client.get(f"{base}/ServiceProviderConfig"),
        await test_client.get(f"{base}/Nope", headers=acme.headers),
        await test_client.delete(f"{base}/Schemas", headers=acme.headers),
        await test_client.get(f"{base}/_test/boom", headers=acme.headers),
        await test_client.post(
            f"{base}/_test/echo",
            headers={**acme.headers, "Content-Type": "application/scim+json"},
            data=b"{",
        ),
    ]
    logged = await rows(db)
    assert [r["status"] for r in logged] == [200, 401, 404, 405, 500, 400]
    assert [r["request_id"] for r in logged] == [r.headers["X-Request-Id"] for r in responses]
    for row in logged:
        assert row["duration_ms"] >= 0
        assert row["occurred_at"] is not None
        assert row["method"] in ("GET", "DELETE", "POST")
    assert logged[5]["scim_type"] == "invalidSyntax"
    assert logged[0]["user_agent"].startswith("Python")
    assert str(logged[0]["client_ip"]) == "127.0.0.1"


async def test_500_says_nothing_internal(
    test_client: Client, base: str, acme: OrgWithToken
) -> None:
    resp = await test_client.get(f"{base}/_test/boom", headers=acme.headers)
    assert resp.status == 500
    body = await resp.json(content_type=None)
    assert body["status"] == "500"
    assert "internal detail" not in body["detail"]
    assert resp.headers["X-Request-Id"] in body["detail"]


async def test_change_and_its_row_commit_together(
    test_client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    resp = await test_client.post(
        f"{base}/_test/change", headers=acme.headers, json={"slug": "initech"}
    )
    assert resp.status == 201
    assert await db.fetchval("SELECT count(*) FROM orgs WHERE slug = 'initech'") == 1
    logged = await rows(db)
    assert [(r["status"], r["path"]) for r in logged] == [(201, f"{base}/_test/change")]


@pytest.mark.parametrize(("fail", "status"), [("after_record", 409), ("crash", 500)])
async def test_a_rolled_back_change_leaves_only_its_failure_row(
    test_client: Client,
    base: str,
    acme: OrgWithToken,
    db: asyncpg.Connection,
    fail: str,
    status: int,
) -> None:
    resp = await test_client.post(
        f"{base}/_test/change", headers=acme.headers, json={"slug": "initech", "fail": fail}
    )
    assert resp.status == status
    assert await db.fetchval("SELECT count(*) FROM orgs WHERE slug = 'initech'") == 0
    logged = await rows(db)
    assert [r["status"] for r in logged] == [status]
    assert logged[0]["org_id"] == acme.org.id


async def test_secrets_never_reach_the_log(
    test_client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    password = "1mz050nq-S3cret"
    body = {
        "userName": "jane@example.com",
        "password": password,
        "nested": [{"Password": password}],
        "note": f"token is {acme.token}",
    }
    await test_client.post(f"{base}/_test/echo", headers=acme.headers, json=body)
    await test_client.post(
        f"{base}/_test/echo",
        headers={**acme.headers, "Content-Type": "application/scim+json"},
        data=f'{{"password": "{password}", "token": "{acme.token}" '.encode(),  # malformed
    )
    await test_client.get(f"{base}/ServiceProviderConfig?x={acme.token}", headers=acme.headers)
    await test_client.get(f"{base}/{acme.token}", headers=acme.headers)
    dump = json.dumps(await rows(db), default=str)
    assert dump.count("jane@example.com") >= 2  # the bodies were stored...
    assert password not in dump  # ...without the password
    assert acme.token not in dump, [line for line in dump.split(", ") if "schscim" in line]
    assert acme.token[8:30] not in dump


async def test_bodies_are_cut_at_the_limit(
    aiohttp_client: AiohttpClient,
    settings: Settings,
    acme: OrgWithToken,
    db: asyncpg.Connection,
    base: str,
) -> None:
    app = create_app(replace(settings, log_body_limit=300), extend_scim=add_test_routes)
    client = await aiohttp_client(app)
    resp = await client.post(
        f"{base}/_test/echo", headers=acme.headers, json={"members": ["x" * 50] * 100}
    )
    assert resp.status == 200
    row = await db.fetchrow("SELECT request_body, response_body FROM provisioning_log")
    assert row is not None
    for text in (row["request_body"], row["response_body"]):
        assert text.startswith('{"members":["xxxx')
        assert "…[cut, " in text
        assert len(text) < 400

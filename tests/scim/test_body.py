"""Request bodies: media types, size, JSON syntax and depth. Never a 500."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.scim.body import read_json_object
from gateway.scim.errors import scim_response
from gateway.settings import Settings
from tests.conftest import OrgWithToken

Client = TestClient[web.Request, web.Application]


async def echo(request: web.Request) -> web.Response:
    return scim_response(await read_json_object(request))


def add_echo(scim: web.Application) -> None:
    scim.router.add_post("/_test/echo", echo)


@pytest.fixture
async def echo_client(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection
) -> Client:
    app = create_app(
        replace(settings, max_body_bytes=256 * 1024),
        extend_scim=add_echo,
    )
    return await aiohttp_client(app)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/scim+json",
        "application/scim+json; charset=utf-8",
        "application/scim+json;charset=UTF-8",
        "application/json",
        "application/json; charset=utf-8",
    ],
)
async def test_scim_and_json_media_types_are_accepted(
    echo_client: Client, base: str, acme: OrgWithToken, content_type: str
) -> None:
    resp = await echo_client.post(
        f"{base}/_test/echo",
        headers={**acme.headers, "Content-Type": content_type},
        data='{"userName":"Zoë"}'.encode(),
    )
    assert resp.status == 200
    assert (await resp.json(content_type=None)) == {"userName": "Zoë"}


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", None],
)
async def test_other_media_types_are_415(
    echo_client: Client, base: str, acme: OrgWithToken, content_type: str | None
) -> None:
    headers = dict(acme.headers)
    if content_type:
        headers["Content-Type"] = content_type
    resp = await echo_client.post(f"{base}/_test/echo", headers=headers, data=b'{"a":1}')
    assert resp.status == 415
    body = await resp.json(content_type=None)
    assert body["status"] == "415"
    assert "application/scim+json" in body["detail"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (b"{", "not valid JSON"),
        (b'{"a": NaN}', "NaN"),
        (b"[1, 2]", "not an array"),
        (b'"text"', "not a string"),
        (b'{"a": "\xff"}', "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "deeper than 32"),
    ],
)
async def test_bad_bodies_are_400_invalid_syntax(
    echo_client: Client,
    base: str,
    acme: OrgWithToken,
    db: asyncpg.Connection,
    data: bytes,
    needle: str,
) -> None:
    resp = await echo_client.post(
        f"{base}/_test/echo",
        headers={**acme.headers, "Content-Type": "application/scim+json"},
        data=data,
    )
    assert resp.status == 400
    body = await resp.json(content_type=None)
    assert body["scimType"] == "invalidSyntax"
    assert needle in body["detail"]
    assert await db.fetchval("SELECT scim_type FROM provisioning_log") == "invalidSyntax"


async def test_bodies_over_the_limit_are_413(
    echo_client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    resp = await echo_client.post(
        f"{base}/_test/echo",
        headers={**acme.headers, "Content-Type": "application/scim+json"},
        data=b'{"a":"' + b"x" * 300_000 + b'"}',
    )
    assert resp.status == 413
    body = await resp.json(content_type=None)
    assert body["status"] == "413"
    assert "SCIM_MAX_BODY_BYTES" in body["detail"]
    assert await db.fetchval("SELECT status FROM provisioning_log") == 413

"""Requests that miss every route get a 404 naming the base URL to paste into Okta."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.scim.wrong_url import diagnose_wrong_url
from gateway.settings import Settings
from tests.conftest import PUBLIC_BASE_URL, OrgWithToken

Client = TestClient[web.Request, web.Application]
BASE_URL = f"{PUBLIC_BASE_URL}/api/sch/scim/v2"

WRONG_PATHS = {
    "/api/sch/scim/v2//Users": "ends with a slash",
    "/api/sch/scim/v2/Users/": "ends with a slash",
    "/api/sch/scim/v2/scim/v2/Users": "repeats the base path",
    "/api/sch/scim/v2/api/sch/scim/v2/Users": "repeats the base path",
    "/api/sch/scim/Users": "version segment /v2 is missing",
    "/scim/v2/Users": "missing the leading /api/sch",
    "/v2/Users": "missing the leading /api/sch/scim",
    "/other/v2/Users": "instead of the SCIM base path",
    "/Users": "instead of the SCIM base path",
    "/api/sch/scim/v2/users": "case-sensitive",
    "/api/sch/scim/v2": "base URL itself",
    "/api/sch/scim/v2/Nope": "no SCIM resource named 'Nope'",
    "/totally/elsewhere": "not under the SCIM base path",
}


@pytest.mark.parametrize(("path", "problem"), WRONG_PATHS.items())
async def test_wrong_urls_name_the_base_url(
    client: Client, acme: OrgWithToken, db: asyncpg.Connection, path: str, problem: str
) -> None:
    resp = await client.get(path, headers=acme.headers)
    assert resp.status == 404
    assert resp.headers["Content-Type"].startswith("application/scim+json")
    body = await resp.json(content_type=None)
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert body["status"] == "404"
    assert problem in body["detail"]
    assert f"paste into Okta is {BASE_URL} (no trailing slash)" in body["detail"]
    row = await db.fetchrow("SELECT org_id, token_id, status, path, detail FROM provisioning_log")
    assert row is not None
    assert row["org_id"] == acme.org.id  # a valid token files the row under its org
    assert row["token_id"] == acme.token_id
    assert row["status"] == 404
    assert row["detail"] == body["detail"]


async def test_wrong_url_without_a_token_is_logged_without_an_org(
    client: Client, db: asyncpg.Connection
) -> None:
    resp = await client.post("/scim/v2/Users", json={"userName": "x", "password": "hunter2"})
    assert resp.status == 404
    row = await db.fetchrow("SELECT org_id, status FROM provisioning_log")
    assert row is not None
    assert row["org_id"] == uuid.UUID(int=0)  # no org: the nil org id (migration 0011)
    assert row["status"] == 404


def test_diagnosis_uses_the_configured_base_path() -> None:
    settings = Settings(scim_base_path="/scim/v2", public_base_url="https://x.example")
    detail = diagnose_wrong_url("/scim/Users", settings)
    assert "version segment /v2 is missing" in detail
    assert "https://x.example/scim/v2 " in detail

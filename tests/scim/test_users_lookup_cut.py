"""The lookup's log row cuts its response like every other row (LOG_BODY_LIMIT_BYTES)."""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.settings import Settings
from tests.conftest import OrgWithToken
from tests.payloads import dumps, okta_create_user
from tests.scim.test_users_lookup import HEADERS, lookup

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, log_body_limit=256)


async def test_a_long_response_is_cut_in_the_row_as_any_other(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    body = okta_create_user("long@example.com")
    async with client.post(
        f"{base}/Users", data=dumps(body), headers={**acme.headers, **HEADERS}
    ) as resp:
        assert resp.status == 201
    request_id, text = await lookup(client, base, acme, "long@example.com")
    stored = await db.fetchval(
        "SELECT response_body FROM provisioning_log WHERE request_id = $1", request_id
    )
    assert stored == text[:256] + f"…[cut, {len(text.encode())} bytes in all]"

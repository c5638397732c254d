"""Concurrent requests: a unique index decides, and no change is lost."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import OrgWithToken
from tests.payloads import dumps, okta_create_user, patch

Client = TestClient[web.Request, web.Application]
HEADERS = {"Content-Type": "application/scim+json"}


async def test_concurrent_creates_of_one_user_name_give_one_201_and_one_409(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    headers = {**acme.headers, **HEADERS}
    for i in range(20):
        name = f"race{i}@example.com"
        first, second = await asyncio.gather(
            client.post(f"{base}/Users", headers=headers, data=dumps(okta_create_user(name))),
            client.post(
                f"{base}/Users", headers=headers, data=dumps(okta_create_user(name.upper()))
            ),
        )
        assert sorted([first.status, second.status]) == [201, 409], i
    assert await db.fetchval("SELECT count(*) FROM scim_users") == 20
    statuses = await db.fetch(
        "SELECT status, count(*) AS n FROM provisioning_log GROUP BY status ORDER BY status"
    )
    assert [(r["status"], r["n"]) for r in statuses] == [(201, 20), (409, 20)]


async def test_concurrent_patches_all_land(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    headers = {**acme.headers, **HEADERS}
    resp = await client.post(f"{base}/Users", headers=headers, data=dumps(okta_create_user()))
    user = await resp.json(content_type=None)
    ops = [
        patch(
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": f"alias{i}@example.com", "type": "other"}],
            }
        )
        for i in range(12)
    ]
    responses = await asyncio.gather(
        *(client.patch(f"{base}/Users/{user['id']}", headers=headers, data=dumps(op)) for op in ops)
    )
    assert [r.status for r in responses] == [200] * 12
    final = await (await client.get(f"{base}/Users/{user['id']}", headers=acme.headers)).json(
        content_type=None
    )
    assert {e["value"] for e in final["emails"]} == {"jane@example.com"} | {
        f"alias{i}@example.com" for i in range(12)
    }
    assert final["meta"]["version"] == 'W/"13"'

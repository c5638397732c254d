"""Round trips to PostgreSQL per request, counted on the pool's connections (issue 12).

Round trips dominate a request's cost: the hot requests of a first sync must make
one (the token's authentication is reused for under a second, see
gateway.scim.tokencache), PATCH and PUT at most two.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB_POOL
from tests.conftest import OrgWithToken
from tests.payloads import dumps, okta_create_user

Client = TestClient[web.Request, web.Application]
SCIM_JSON = {"Content-Type": "application/scim+json"}


class Statements:
    """Every statement the app's pooled connections send, in order."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, record: Any) -> None:
        self.sent.append(record.query)


@pytest.fixture
async def statements(app: web.Application, client: Client) -> Statements:
    counter = Statements()
    pool = app[DB_POOL]
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    for conn in held:
        conn.add_query_logger(counter)
    for conn in held:
        await pool.release(conn)
    return counter


async def count(statements: Statements, request: Any) -> int:
    statements.sent.clear()
    async with request as resp:
        assert resp.status < 400, await resp.text()
    return len(statements.sent)


async def test_hot_requests_make_one_round_trip_and_writes_at_most_two(
    client: Client, base: str, acme: OrgWithToken, statements: Statements
) -> None:
    headers = {**acme.headers, **SCIM_JSON}
    # The first request of a token authenticates against the database.
    okta_filter = quote('userName eq "ann@example.com"')
    lookup = f"{base}/Users?filter={okta_filter}&startIndex=1&count=100"
    assert await count(statements, client.get(lookup, headers=headers)) == 2
    assert "scim_tokens" in statements.sent[0]

    create = client.post(
        f"{base}/Users", data=dumps(okta_create_user("ann@example.com")), headers=headers
    )
    assert await count(statements, create) == 1
    async with client.get(lookup, headers=headers) as resp:
        user_id = (await resp.json(content_type=None))["Resources"][0]["id"]
    assert await count(statements, client.get(lookup, headers=headers)) == 1
    assert await count(statements, client.get(f"{base}/Users/{user_id}", headers=headers)) <= 2

    deactivate = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    patch = client.patch(f"{base}/Users/{user_id}", data=dumps(deactivate), headers=headers)
    assert await count(statements, patch) <= 2
    replace = {**okta_create_user("ann@example.com"), "id": user_id}
    put = client.put(f"{base}/Users/{user_id}", data=dumps(replace), headers=headers)
    assert await count(statements, put) <= 2
    assert not [s for s in statements.sent if "scim_tokens" in s]

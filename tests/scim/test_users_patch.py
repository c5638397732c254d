"""PATCH on /Users (RFC 7644 §3.5.2), in Okta's, Entra's and the RFC's forms."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import OrgWithToken
from tests.payloads import ENTERPRISE, dumps, okta_create_user, patch

Client = TestClient[web.Request, web.Application]
HEADERS = {"Content-Type": "application/scim+json"}


@pytest.fixture
async def user(client: Client, base: str, acme: OrgWithToken) -> dict[str, Any]:
    body = okta_create_user()
    body["emails"].append({"value": "jane@home.example", "type": "home"})
    body["phoneNumbers"] = [{"value": "+1 555 0100", "type": "work"}]
    body[ENTERPRISE] = {"department": "R&D"}
    resp = await client.post(f"{base}/Users", headers={**acme.headers, **HEADERS}, data=dumps(body))
    assert resp.status == 201
    return dict(await resp.json(content_type=None))


async def send(
    client: Client, base: str, org: OrgWithToken, user_id: str, body: dict[str, Any]
) -> tuple[int, Any]:
    resp = await client.patch(
        f"{base}/Users/{user_id}", headers={**org.headers, **HEADERS}, data=dumps(body)
    )
    return resp.status, await resp.json(content_type=None)


async def ok(
    client: Client, base: str, org: OrgWithToken, user: dict[str, Any], *ops: dict[str, Any]
) -> dict[str, Any]:
    status, body = await send(client, base, org, user["id"], patch(*ops))
    assert status == 200, body
    assert body["id"] == user["id"]
    return dict(body)


async def test_replace_with_paths_sub_attributes_and_urns(
    client: Client, base: str, acme: OrgWithToken, user: dict[str, Any]
) -> None:
    body = await ok(
        client,
        base,
        acme,
        user,
        {"op": "replace", "path": "name.givenName", "value": "Janet"},
        {"op": "replace", "path": "title", "value": "Engineer"},
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Security"},
        {"op": "add", "path": f"{ENTERPRISE}:manager", "value": {"value": "boss-1"}},
        {
            "op": "replace",
            "path": "urn:ietf:params:scim:schemas:core:2.0:User:nickName",
            "value": "JJ",
        },
    )
    assert body["name"] == {"givenName": "Janet", "familyName": "Doe"}
    assert body["title"] == "Engineer"
    assert body["nickName"] == "JJ"
    assert body[ENTERPRISE] == {"department": "Security", "manager": {"value": "boss-1"}}


async def test_value_filter_paths(
    client: Client, base: str, acme: OrgWithToken, user: dict[str, Any]
) -> None:
    body = await ok(
        client,
        base,
        acme,
        user,
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "jane.doe@example.com"},
        {"op": "remove", "path": 'emails[type eq "home"]'},
        {
            "op": "replace",
            "path": 'phoneNumbers[type eq "work"]',
            "value": {"value": "+1 555 0199", "type": "work"},
        },
    )
    assert body["emails"] == [{"primary": True, "value": "jane.doe@example.com", "type": "work"}]
    assert body["phoneNumbers"] == [{"value": "+1 555 0199", "type": "work"}]


async def test_add_to_multi_valued_and_primary_moves(
    client: Client, base: str, acme: OrgWithToken, user: dict[str, Any]
) -> None:
    body = await ok(
        client,
        base,
        acme,
        user,
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "new@example.com", "type": "other", "primary": True}],
        },
    )
    primaries = [e["value"] for e in body["emails"] if e.get("primary")]
    assert primaries == ["new@example.com"]
    assert len(body["emails"]) == 3
    again = await ok(
        client,
        base,
        acme,
        user,
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "new@example.com", "type": "other", "primary": True}],
        },
    )
    assert len(again["emails"]) == 3  # adding an existing value is idempotent


async def test_remove_attributes(
    client: Client, base: str, acme: OrgWithToken, user: dict[str, Any]
) -> None:
    body = await ok(
        client,
        base,
        acme,
        user,
        {"op": "remove", "path": "locale"},
        {"op": "remove", "path": "displayName"},
        {"op": "remove", "path": f"{ENTERPRISE}:department"},
        {"op": "remove", "path": "phoneNumbers"},
    )
    assert "locale" not in body
    assert "displayName" not in body
    assert ENTERPRISE not in body
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]
    assert "phoneNumbers" not in body


async def test_pathless_add_and_replace_merge(
    client: Client, base: str, acme: OrgWithToken, user: dict[str, Any]
) -> None:
    body = await ok(
        client,
        base,
        acme,
        user,
        {
            "op": "replace",
            "value": {
                "name": {"middleName": "Q"},
                "title": "CTO",
                ENTERPRISE: {"costCenter": "42"},
            },
        },
    )
    assert body["name"] == {"givenName": "Jane", "familyName": "Doe", "middleName": "Q"}
    assert body["title"] == "CTO"
    assert body[ENTERPRISE] == {"department": "R&D", "costCenter": "42"}


async def test_a_request_is_atomic(
    client: Client, base: str, acme: OrgWithToken, user: dict[str, Any], db: asyncpg.Connection
) -> None:
    status, error = await send(
        client,
        base,
        acme,
        user["id"],
        patch(
            {"op": "replace", "path": "title", "value": "Changed"},
            {"op": "replace", "path": "nope", "value": 1},
        ),
    )
    assert status == 400
    assert error["scimType"] == "invalidPath"
    resp = await client.get(f"{base}/Users/{user['id']}", headers=acme.headers)
    assert "title" not in await resp.json(content_type=None)
    assert await db.fetchval("SELECT version FROM scim_users") == 1


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "replace", "path": "id", "value": "x"}, "mutability"),
        ({"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}, "mutability"),
        ({"op": "add", "path": "groups", "value": [{"value": "g"}]}, "mutability"),
        ({"op": "replace", "value": {"id": "another-id"}}, "mutability"),
        ({"op": "replace", "path": "doesNotExist", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "name.nope", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": "emails[type eq", "value": "x"}, "invalidPath"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "replace", "path": 'emails[type eq "pager"].value', "value": "x"}, "noTarget"),
        ({"op": "move", "path": "title", "value": "x"}, "invalidSyntax"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
        ({"op": "replace", "path": "emails", "value": "x"}, "invalidValue"),
        ({"op": "remove", "path": "userName"}, "invalidValue"),
        ({"op": "remove", "path": "name.familyName"}, "invalidValue"),
    ],
)
async def test_invalid_operations(
    client: Client,
    base: str,
    acme: OrgWithToken,
    user: dict[str, Any],
    operation: dict[str, Any],
    scim_type: str,
) -> None:
    status, error = await send(client, base, acme, user["id"], patch(operation))
    assert status == 400, error
    assert error["scimType"] == scim_type
    assert error["detail"]


async def test_not_a_patch_op_body(
    client: Client, base: str, acme: OrgWithToken, user: dict[str, Any]
) -> None:
    for body in (
        {"Operations": [{"op": "replace", "value": {"active": False}}]},
        {"schemas": [patch()["schemas"][0]]},
    ):
        status, error = await send(client, base, acme, user["id"], body)
        assert status == 400
        assert error["scimType"] == "invalidSyntax"


async def test_remove_matching_nothing_is_a_noted_no_op(
    client: Client, base: str, acme: OrgWithToken, user: dict[str, Any], db: asyncpg.Connection
) -> None:
    await ok(client, base, acme, user, {"op": "remove", "path": 'emails[type eq "pager"]'})
    notes = await db.fetchval("SELECT notes FROM provisioning_log WHERE method = 'PATCH'")
    assert any("matched no emails value" in n for n in notes)
    assert any("no change" in n for n in notes)
    assert await db.fetchval("SELECT version FROM scim_users") == 1


async def test_okta_id_in_value_equal_to_the_url_is_fine(
    client: Client, base: str, acme: OrgWithToken, user: dict[str, Any]
) -> None:
    body = await ok(
        client,
        base,
        acme,
        user,
        {"op": "replace", "value": {"id": user["id"], "displayName": "J D"}},
    )
    assert body["displayName"] == "J D"


async def test_etags(client: Client, base: str, acme: OrgWithToken, user: dict[str, Any]) -> None:
    url = f"{base}/Users/{user['id']}"
    version = user["meta"]["version"]
    resp = await client.get(url, headers={**acme.headers, "If-None-Match": version})
    assert resp.status == 304
    stale = {**acme.headers, **HEADERS, "If-Match": 'W/"999"'}
    resp = await client.patch(
        url, headers=stale, data=dumps(patch({"op": "replace", "path": "title", "value": "x"}))
    )
    assert resp.status == 412
    assert (await resp.json(content_type=None))["status"] == "412"
    resp = await client.put(url, headers=stale, data=dumps(okta_create_user()))
    assert resp.status == 412
    resp = await client.delete(url, headers=stale)
    assert resp.status == 412
    fresh = {**acme.headers, **HEADERS, "If-Match": version}
    resp = await client.patch(
        url, headers=fresh, data=dumps(patch({"op": "replace", "path": "title", "value": "x"}))
    )
    assert resp.status == 200
    new_version = (await resp.json(content_type=None))["meta"]["version"]
    assert new_version != version
    assert resp.headers["ETag"] == new_version
    resp = await client.get(url, headers={**acme.headers, "If-None-Match": version})
    assert resp.status == 200
    resp = await client.delete(url, headers={**acme.headers, "If-Match": new_version})
    assert resp.status == 204

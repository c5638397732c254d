"""Okta's user lifecycle, request by request, for OIN (PATCH) and AIW (PUT) apps."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import PUBLIC_BASE_URL, OrgWithToken
from tests.payloads import (
    ENTERPRISE,
    ERROR,
    LIST,
    OKTA_HEADERS,
    USER,
    dumps,
    okta_create_user,
    okta_deactivate,
    okta_reactivate,
)

Client = TestClient[web.Request, web.Application]


class Okta:
    """Sends what Okta's SCIM client sends."""

    def __init__(self, client: Client, base: str, org: OrgWithToken) -> None:
        self.client = client
        self.base = base
        self.headers = {**OKTA_HEADERS, **org.headers}

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        headers = dict(self.headers)
        if body is None:
            headers.pop("Content-Type")
        resp = await self.client.request(
            method,
            f"{self.base}{path}",
            headers=headers,
            data=dumps(body) if body is not None else None,
        )
        text = await resp.text()
        assert resp.headers.get("Content-Type", "application/scim+json").startswith(
            "application/scim+json"
        )
        return resp.status, (await resp.json(content_type=None)) if text else None

    async def lookup(self, user_name: str) -> dict[str, Any]:
        expression = quote(f'userName eq "{user_name}"')
        status, body = await self.call("GET", f"/Users?filter={expression}&startIndex=1&count=100")
        assert status == 200
        return dict(body)


async def test_test_api_credentials_on_an_empty_org(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    okta = Okta(client, base, acme)
    status, body = await okta.call("GET", "/Users?startIndex=1&count=2")
    assert status == 200
    assert body == {
        "schemas": [LIST],
        "totalResults": 0,
        "startIndex": 1,
        "itemsPerPage": 0,
        "Resources": [],
    }


async def test_create_flow_lookup_then_post(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    okta = Okta(client, base, acme)
    assert (await okta.lookup("jane@example.com"))["totalResults"] == 0
    resp = await client.post(
        f"{base}/Users", headers={**okta.headers}, data=dumps(okta_create_user())
    )
    assert resp.status == 201
    user = await resp.json(content_type=None)
    assert resp.headers["Location"] == f"{PUBLIC_BASE_URL}{base}/Users/{user['id']}"
    assert resp.headers["ETag"] == user["meta"]["version"]
    assert user["schemas"] == [USER]
    assert user["userName"] == "jane@example.com"
    assert user["name"] == {"givenName": "Jane", "familyName": "Doe"}
    assert user["emails"] == [{"primary": True, "value": "jane@example.com", "type": "work"}]
    assert user["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert user["active"] is True
    assert "password" not in user
    assert "groups" not in user or user["groups"] == []
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["location"] == resp.headers["Location"]
    found = await okta.lookup("jane@example.com")
    assert found["totalResults"] == 1
    assert found["Resources"][0]["id"] == user["id"]
    # The password is neither stored nor logged.
    dump = str([dict(r) for r in await db.fetch("SELECT * FROM scim_users")])
    dump += str([dict(r) for r in await db.fetch("SELECT * FROM provisioning_log")])
    assert "1mz050nq" not in dump


async def test_user_name_is_case_insensitive_and_kept_as_sent(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    okta = Okta(client, base, acme)
    status, created = await okta.call("POST", "/Users", okta_create_user("Jane.Doe@Example.com"))
    assert status == 201
    assert created["userName"] == "Jane.Doe@Example.com"
    for variant in ("jane.doe@example.com", "JANE.DOE@EXAMPLE.COM"):
        found = await okta.lookup(variant)
        assert found["totalResults"] == 1
        assert found["Resources"][0]["userName"] == "Jane.Doe@Example.com"
    status, error = await okta.call("POST", "/Users", okta_create_user("JANE.DOE@example.COM"))
    assert status == 409
    assert error["schemas"] == [ERROR]
    assert error["status"] == "409"
    assert error["scimType"] == "uniqueness"
    assert created["id"] in error["detail"]


async def test_enterprise_and_custom_extensions(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    okta = Okta(client, base, acme)
    body = okta_create_user()
    body["schemas"] = [USER, ENTERPRISE, "urn:ietf:params:scim:schemas:extension:custom:2.0:User"]
    body[ENTERPRISE] = {
        "department": "Engineering",
        "employeeNumber": "701984",
        "manager": {"value": "boss-1"},
    }
    body["urn:ietf:params:scim:schemas:extension:custom:2.0:User"] = {"favouriteColour": "teal"}
    body["nickname"] = "JD"  # attribute names are case-insensitive
    status, user = await okta.call("POST", "/Users", body)
    assert status == 201
    assert user["schemas"] == [USER, ENTERPRISE]
    assert user[ENTERPRISE] == {
        "department": "Engineering",
        "employeeNumber": "701984",
        "manager": {"value": "boss-1"},
    }
    assert user["nickName"] == "JD"
    assert "urn:ietf:params:scim:schemas:extension:custom:2.0:User" not in user
    notes = await db.fetchval("SELECT notes FROM provisioning_log WHERE method = 'POST'")
    assert notes == [
        "ignored attributes under urn:ietf:params:scim:schemas:extension:custom:2.0:User (schema not served)"
    ]


async def test_aiw_update_is_get_then_full_put(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    okta = Okta(client, base, acme)
    _, user = await okta.call("POST", "/Users", okta_create_user())
    status, fetched = await okta.call("GET", f"/Users/{user['id']}")
    assert status == 200
    fetched["name"] = {"givenName": "Another", "middleName": "Excited", "familyName": "User"}
    fetched["emails"][0]["display"] = "jane@example.com"
    fetched["password"] = "newRandom1"
    fetched["groups"] = []
    del fetched["displayName"]  # PUT replaces: what the body omits is cleared
    status, updated = await okta.call("PUT", f"/Users/{user['id']}", fetched)
    assert status == 200
    assert updated["id"] == user["id"]
    assert updated["name"] == {
        "givenName": "Another",
        "middleName": "Excited",
        "familyName": "User",
    }
    assert "displayName" not in updated
    assert updated["meta"]["created"] == user["meta"]["created"]
    assert updated["meta"]["version"] != user["meta"]["version"]
    assert "password" not in updated


async def test_put_with_a_different_id_is_400(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    okta = Okta(client, base, acme)
    _, user = await okta.call("POST", "/Users", okta_create_user())
    body = {**user, "id": "00000000-0000-0000-0000-000000000000"}
    status, error = await okta.call("PUT", f"/Users/{user['id']}", body)
    assert status == 400
    assert "id" in error["detail"]


async def test_oin_deactivate_and_reactivate_by_patch_keep_the_user(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    okta = Okta(client, base, acme)
    _, user = await okta.call("POST", "/Users", okta_create_user())
    status, patched = await okta.call("PATCH", f"/Users/{user['id']}", okta_deactivate())
    assert status == 200
    assert patched["active"] is False
    status, fetched = await okta.call("GET", f"/Users/{user['id']}")
    assert status == 200
    assert fetched["active"] is False
    status, patched = await okta.call("PATCH", f"/Users/{user['id']}", okta_reactivate())
    assert patched["active"] is True
    assert patched["id"] == user["id"]


async def test_aiw_deactivate_and_reactivate_by_put(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    okta = Okta(client, base, acme)
    _, user = await okta.call("POST", "/Users", okta_create_user())
    for active in (False, True):
        _, fetched = await okta.call("GET", f"/Users/{user['id']}")
        status, updated = await okta.call(
            "PUT", f"/Users/{user['id']}", {**fetched, "active": active}
        )
        assert status == 200
        assert updated["active"] is active
        _, again = await okta.call("GET", f"/Users/{user['id']}")
        assert again["active"] is active
        assert again["id"] == user["id"]


async def test_put_without_active_keeps_the_state(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    okta = Okta(client, base, acme)
    _, user = await okta.call("POST", "/Users", okta_create_user())
    await okta.call("PATCH", f"/Users/{user['id']}", okta_deactivate())
    body = okta_create_user()
    del body["active"]
    _, updated = await okta.call("PUT", f"/Users/{user['id']}", body)
    assert updated["active"] is False


async def test_delete_then_404_and_the_user_name_is_free(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    okta = Okta(client, base, acme)
    _, user = await okta.call("POST", "/Users", okta_create_user())
    status, body = await okta.call("DELETE", f"/Users/{user['id']}")
    assert (status, body) == (204, None)
    status, error = await okta.call("GET", f"/Users/{user['id']}")
    assert status == 404
    assert error["status"] == "404"
    assert (await okta.call("DELETE", f"/Users/{user['id']}"))[0] == 404
    assert (await okta.call("POST", "/Users", okta_create_user()))[0] == 201


async def test_unknown_and_malformed_ids_are_404(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    okta = Okta(client, base, acme)
    for bad in (
        "010101001010101011001010101011",
        "00919288221112222",
        "not-a-uuid",
        "6d3c6a6e-0000-4000-8000-000000000000",
    ):
        for method, body in (
            ("GET", None),
            ("PUT", okta_create_user()),
            ("PATCH", okta_deactivate()),
            ("DELETE", None),
        ):
            status, error = await okta.call(method, f"/Users/{bad}", body)
            assert status == 404, (method, bad)
            assert error["schemas"] == [ERROR]
            assert error["detail"]


async def test_create_ignores_read_only_and_reports_type_errors(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    okta = Okta(client, base, acme)
    body = okta_create_user()
    body["id"] = "client-chosen"
    body["meta"] = {"created": "2001-01-01T00:00:00Z"}
    body["groups"] = [{"value": "g1"}]
    status, user = await okta.call("POST", "/Users", body)
    assert status == 201
    assert user["id"] != "client-chosen"
    assert user["meta"]["created"] != "2001-01-01T00:00:00Z"
    cases = {
        "active": (3, "'active' must be true or false"),
        "emails": ("x", "'emails' must be an array"),
        "name": ("Jane", "'name' must be an object"),
        "displayName": (["a"], "'displayName' must be a string"),
        "title": ("Boss\u0000", "'title' contains a NUL character"),
        "nickName": ("\ud800", "'nickName' contains a NUL character or an unpaired surrogate"),
    }
    for attribute, (value, detail) in cases.items():
        status, error = await okta.call(
            "POST", "/Users", {**okta_create_user("other@example.com"), attribute: value}
        )
        assert status == 400, attribute
        assert error["scimType"] == "invalidValue"
        assert detail in error["detail"]
    no_user_name = okta_create_user("x@example.com")
    del no_user_name["userName"]
    status, error = await okta.call("POST", "/Users", no_user_name)
    assert status == 400
    assert error["scimType"] == "invalidValue"
    assert "userName" in error["detail"]
    assert "Provisioning → To App" in error["detail"]

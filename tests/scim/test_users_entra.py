"""Microsoft Entra ID's SCIM dialect lands in the same state as Okta's forms."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import OrgWithToken
from tests.payloads import ENTERPRISE, PATCH_OP, USER, dumps

Client = TestClient[web.Request, web.Application]
HEADERS = {"Content-Type": "application/scim+json", "User-Agent": "Azure AD SCIM Provisioning"}

ENTRA_CREATE = {
    "schemas": [USER, ENTERPRISE],
    "externalId": "f4d2c3b1-entra",
    "userName": "Alex.Wilber@contoso.com",
    "active": True,
    "displayName": "Alex Wilber",
    "emails": [{"primary": True, "type": "work", "value": "Alex.Wilber@contoso.com"}],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "Alex Wilber", "familyName": "Wilber", "givenName": "Alex"},
    "roles": [],
    ENTERPRISE: {"department": "Retail"},
}


def filtered(base: str, expression: str) -> str:
    return f"{base}/Users?filter={quote(expression)}"


async def call(
    client: Client, org: OrgWithToken, method: str, url: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    resp = await client.request(
        method, url, headers={**org.headers, **HEADERS}, data=dumps(body) if body else None
    )
    text = await resp.text()
    return resp.status, (await resp.json(content_type=None)) if text else None


async def test_entra_lifecycle(client: Client, base: str, acme: OrgWithToken) -> None:
    # Entra probes a random id and its externalId before creating.
    status, found = await call(client, acme, "GET", filtered(base, 'id eq "7d5a8d9c-random"'))
    assert (status, found["totalResults"]) == (200, 0)
    status, found = await call(
        client, acme, "GET", filtered(base, 'externalId eq "f4d2c3b1-entra"')
    )
    assert (status, found["totalResults"]) == (200, 0)
    status, user = await call(client, acme, "POST", f"{base}/Users", ENTRA_CREATE)
    assert status == 201
    url = f"{base}/Users/{user['id']}"
    status, found = await call(
        client, acme, "GET", filtered(base, 'externalId eq "f4d2c3b1-entra"')
    )
    assert found["totalResults"] == 1
    # externalId is caseExact.
    status, found = await call(
        client, acme, "GET", filtered(base, 'externalId eq "F4D2C3B1-ENTRA"')
    )
    assert found["totalResults"] == 0
    status, patched = await call(
        client,
        acme,
        "PATCH",
        url,
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "Replace", "path": "active", "value": "False"},
                {
                    "op": "Replace",
                    "value": {"name.givenName": "Alexander", f"{ENTERPRISE}:department": "Sales"},
                },
                {"op": "Add", "path": 'emails[type eq "work"].value', "value": "alex@contoso.com"},
                {
                    "op": "Add",
                    "path": 'phoneNumbers[type eq "mobile"].value',
                    "value": "+1 555 0101",
                },
                {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": "manager-id"},
                {"op": "Add", "path": "title", "value": "Buyer"},
            ],
        },
    )
    assert status == 200, patched
    assert patched["active"] is False
    assert patched["name"]["givenName"] == "Alexander"
    assert patched[ENTERPRISE] == {"department": "Sales", "manager": {"value": "manager-id"}}
    assert patched["emails"] == [{"primary": True, "type": "work", "value": "alex@contoso.com"}]
    assert patched["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0101"}]
    assert patched["title"] == "Buyer"
    status, patched = await call(
        client,
        acme,
        "PATCH",
        url,
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": "active", "value": "True"}],
        },
    )
    assert patched["active"] is True


async def test_entra_and_okta_deactivation_agree(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    states = []
    for user_name, operation in (
        ("okta@contoso.com", {"op": "replace", "value": {"active": False}}),
        ("entra@contoso.com", {"op": "Replace", "path": "active", "value": "False"}),
        ("entra2@contoso.com", {"op": "Replace", "value": {"active": "false"}}),
    ):
        _, user = await call(
            client,
            acme,
            "POST",
            f"{base}/Users",
            {**ENTRA_CREATE, "userName": user_name, "externalId": user_name},
        )
        status, patched = await call(
            client,
            acme,
            "PATCH",
            f"{base}/Users/{user['id']}",
            {"schemas": [PATCH_OP], "Operations": [operation]},
        )
        assert status == 200
        states.append(patched["active"])
    assert states == [False, False, False]

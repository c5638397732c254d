"""Okta's lookup before a create, served by one statement that renders the user in SQL.

The statement (sql/queries/users.sql lookup_user_name) renders the ListResponse so
that its log row keeps exactly what was sent; it must render every user as
gateway.scim.users.render_user does for every other read.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import OrgWithToken
from tests.payloads import ENTERPRISE, LIST, USER, dumps, okta_create_user

Client = TestClient[web.Request, web.Application]
HEADERS = {"Content-Type": "application/scim+json"}


def entra_user(user_name: str) -> dict[str, Any]:
    """Entra's POST /Users: the enterprise extension, addresses, phone numbers, a title."""
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c12bd6a7",
        "userName": user_name,
        "active": True,
        "displayName": "Åsa Öberg",
        "title": "Security champion",
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "name": {"formatted": "Åsa Öberg", "familyName": "Öberg", "givenName": "Åsa"},
        "addresses": [{"type": "work", "locality": "Malmö", "country": "SE", "primary": False}],
        "phoneNumbers": [{"type": "mobile", "value": "+46 70 123 45 67"}],
        ENTERPRISE: {"employeeNumber": "701984", "department": "R&D", "costCenter": "4130"},
    }


async def lookup(
    client: Client, base: str, org: OrgWithToken, user_name: str, extra: str = ""
) -> Any:
    okta_filter = quote(f'userName eq "{user_name}"')
    url = f"{base}/Users?filter={okta_filter}&startIndex=1&count=100{extra}"
    async with client.get(url, headers=org.headers) as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["X-Request-Id"], await resp.text()


async def test_the_lookup_renders_users_as_every_other_read(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    headers = {**acme.headers, **HEADERS}
    ids = {}
    for name, body in (
        ("okta@example.com", okta_create_user("okta@example.com")),
        ("Entra.User@Example.com", entra_user("Entra.User@Example.com")),
        (
            "bare@example.com",
            {
                "schemas": [USER],
                "userName": "bare@example.com",
                "name": {"givenName": "Bare", "familyName": "Minimum"},
            },
        ),
    ):
        async with client.post(f"{base}/Users", data=dumps(body), headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            ids[name] = (await resp.json(content_type=None))["id"]
    for team in ("Champions", 'Blue <team> & "quotes"'):
        members = [{"value": ids["okta@example.com"]}, {"value": ids["Entra.User@Example.com"]}]
        group = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": team,
            "members": members,
        }
        async with client.post(f"{base}/Groups", data=dumps(group), headers=headers) as resp:
            assert resp.status == 201, await resp.text()
    # A whole second: ISO 8601 without a fraction, as Python writes it.
    await db.execute(
        "UPDATE scim_users SET created_at = date_trunc('second', created_at) WHERE id = $1",
        ids["bare@example.com"],
    )

    for name, user_id in ids.items():
        for asked in (name, name.upper()):
            request_id, text = await lookup(client, base, acme, asked)
            looked_up = json.loads(text)
            assert looked_up["schemas"] == [LIST]
            assert (
                looked_up["totalResults"],
                looked_up["startIndex"],
                looked_up["itemsPerPage"],
            ) == (1, 1, 1)
            async with client.get(f"{base}/Users/{user_id}", headers=acme.headers) as resp:
                assert looked_up["Resources"] == [await resp.json(content_type=None)]
            # The general path (any attributes parameter) renders in Python: the same user.
            _, general = await lookup(client, base, acme, asked, "&excludedAttributes=password")
            assert json.loads(general) == looked_up
            row = await db.fetchrow(
                "SELECT response_body, target_id, target_name, target_key, event_detail "
                "FROM provisioning_log WHERE request_id = $1",
                request_id,
            )
            assert row is not None
            assert row["response_body"] == text  # the row keeps what was sent
            assert str(row["target_id"]) == user_id
            assert row["target_name"] == name
            assert row["target_key"] == f"user:{name.casefold()}"
            assert row["event_detail"] == "found: Okta links the existing user"


async def test_a_lookup_that_finds_nobody_is_logged_for_the_name(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    request_id, text = await lookup(client, base, acme, "New.Hire@example.com")
    body = json.loads(text)
    assert (body["totalResults"], body["Resources"]) == (0, [])
    row = await db.fetchrow(
        "SELECT response_body, target_id, target_key, event, event_detail, outcome, duration_ms "
        "FROM provisioning_log WHERE request_id = $1",
        request_id,
    )
    assert row is not None
    assert json.loads(row["response_body"]) == body
    assert row["target_id"] is None
    assert row["target_key"] == "user:new.hire@example.com"
    assert (row["event"], row["outcome"]) == ("Look up user", "success")
    assert row["event_detail"] == "no user found: Okta creates it"
    assert row["duration_ms"] > 0

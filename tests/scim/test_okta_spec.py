"""Okta's published "Okta SCIM 2.0 SPEC Test" (Runscope), replayed step by step.

Assertions are evaluated the way Runscope evaluates them: numbers must be JSON
numbers, `status` of errors compares as text, and "not empty" means present and
not null/""/[].
"""

from __future__ import annotations

import random
import string
from typing import Any
from urllib.parse import quote

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import OrgWithToken
from tests.payloads import ERROR, LIST, USER, dumps, okta_create_user

Client = TestClient[web.Request, web.Application]


def by_user_name(name: str) -> str:
    return "/Users?filter=" + quote(f'userName eq "{name}"')


def not_empty(value: Any) -> bool:
    return value not in (None, "", [], {})


async def test_okta_spec_test(client: Client, base: str, acme: OrgWithToken) -> None:
    rng = random.Random(7)
    first = f"Runscope{rng.randint(100, 999)}"
    last = (
        rng.choice(string.ascii_uppercase)
        + "".join(rng.choices(string.ascii_lowercase, k=8))
        + str(rng.randint(100, 999))
    )
    email = f"{first}{last}@atko.com"
    headers = {
        "Accept-Charset": "utf-8",
        "Content-Type": "application/scim+json; charset=utf-8",
        "Accept": "application/scim+json",
        "Authorization": acme.headers["Authorization"],
        "User-Agent": "OKTA SCIM Integration",
    }
    post_headers = {
        "Content-Type": "application/json",
        "Accept": "application/scim+json; charset=utf-8",
        "Authorization": acme.headers["Authorization"],
    }

    async def get(path: str, **extra: str) -> tuple[int, Any]:
        resp = await client.get(f"{base}{path}", headers={**headers, **extra})
        return resp.status, await resp.json(content_type=None)

    # Precondition: an active user with names and an email exists.
    resp = await client.post(
        f"{base}/Users", headers=post_headers, data=dumps(okta_create_user("existing@atko.com"))
    )
    assert resp.status == 201

    # 1. Test Users endpoint
    status, body = await get("/Users?count=1&startIndex=1")
    assert status == 200
    assert LIST in body["schemas"]
    assert not_empty(body["Resources"])
    for key in ("itemsPerPage", "startIndex", "totalResults"):
        assert type(body[key]) is int
    first_user = body["Resources"][0]
    for value in (
        first_user["id"],
        first_user["name"]["familyName"],
        first_user["name"]["givenName"],
        first_user["userName"],
        first_user["active"],
        first_user["emails"][0]["value"],
    ):
        assert not_empty(value)
    isv_user_id = first_user["id"]

    # 2. Get Users/{{id}}
    status, body = await get(f"/Users/{isv_user_id}")
    assert status == 200
    assert body["id"] == isv_user_id
    assert not_empty(body["emails"][0]["value"])

    # 3. Test invalid User by username
    status, body = await get(by_user_name("abcdefgh@atko.com"))
    assert status == 200
    assert LIST in body["schemas"]
    assert str(body["totalResults"]) == "0"

    # 4. Test invalid User by ID
    status, body = await get("/Users/010101001010101011001010101011")
    assert status == 404
    assert not_empty(body["detail"])
    assert ERROR in body["schemas"]

    # 5. Make sure random user doesn't exist
    status, body = await get(by_user_name(email))
    assert (status, body["totalResults"]) == (200, 0)

    # 6. Create Okta user with realistic values
    create = {
        "schemas": [USER],
        "userName": email,
        "name": {"givenName": first, "familyName": last},
        "emails": [{"primary": True, "value": email, "type": "work"}],
        "displayName": f"{first} {last}",
        "active": True,
    }
    resp = await client.post(f"{base}/Users", headers=post_headers, data=dumps(create))
    assert resp.status == 201
    body = await resp.json(content_type=None)
    assert body["active"] is True
    assert not_empty(body["id"])
    assert body["name"] == {"givenName": first, "familyName": last}
    assert USER in body["schemas"]
    assert body["userName"] == email  # exact case
    user_one = body["id"]

    # 7. Verify that user was created
    status, body = await get(f"/Users/{user_one}")
    assert (status, body["userName"], body["name"]["familyName"]) == (200, email, last)

    # 8. Expect failure when recreating user with same values
    resp = await client.post(f"{base}/Users", headers=post_headers, data=dumps(create))
    assert resp.status == 409

    # 9. Username Case Sensitivity Check
    status, body = await get(by_user_name(email.upper()))
    assert status == 200
    assert body["totalResults"] == 1

    # 10. Verify Groups endpoint (optional; no paging parameters)
    resp = await client.get(f"{base}/Groups", headers=headers)
    assert resp.status in (200, 404)

    # 11. Check status 401
    status, body = await get(by_user_name(email.upper()), Authorization="non-token")
    assert status == 401
    assert not_empty(body["detail"])
    assert body["status"] == "401"
    assert ERROR in body["schemas"]

    # 12. Check status 404
    status, body = await get("/Users/00919288221112222")
    assert status == 404
    assert body["status"] == "404"
    assert ERROR in body["schemas"]

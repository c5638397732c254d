"""Listing, paging, sorting, projection and search on /Users."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.scim.resource import USER_TYPE, Normalizer
from gateway.scim.users import to_write
from gateway.store.provisioning_log import LogRow, PendingRow, log_json
from gateway.store.users import insert_user
from tests.conftest import OrgWithToken
from tests.payloads import LIST, dumps, okta_create_user

Client = TestClient[web.Request, web.Application]


async def seed(
    db: asyncpg.Connection, org: OrgWithToken, n: int, prefix: str = "user"
) -> list[str]:
    """Insert users straight through the store (the request path is tested elsewhere)."""
    now = datetime.now(UTC)
    row = LogRow(
        occurred_at=now,
        request_id="seed",
        method="POST",
        path="/seed",
        query="",
        status=201,
        duration_ms=0,
    )
    ids = []
    for i in range(n):
        body = okta_create_user(
            f"{prefix}{i:04d}@example.com", given=f"Given{i % 7}", family=f"Family{i:04d}"
        )
        body["title"] = ["Engineer", "Manager", "Designer"][i % 3]
        user_id = uuid.uuid4()
        await insert_user(
            db,
            org.org.id,
            user_id,
            to_write(Normalizer(USER_TYPE).document(body)),
            now,
            PendingRow(log_json(row)),
        )
        ids.append(str(user_id))
    return ids


async def get(client: Client, org: OrgWithToken, url: str) -> dict[str, Any]:
    resp = await client.get(url, headers=org.headers)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json(content_type=None))


async def test_import_pages_each_user_exactly_once_in_a_stable_order(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    ids = await seed(db, acme, 250)
    seen: list[str] = []
    start = 1
    while True:
        page = await get(client, acme, f"{base}/Users?startIndex={start}&count=100")
        assert page["schemas"] == [LIST]
        assert page["totalResults"] == 250
        assert page["startIndex"] == start
        assert page["itemsPerPage"] == len(page["Resources"])
        seen += [u["id"] for u in page["Resources"]]
        if start + 100 > page["totalResults"]:
            break
        start += 100
    assert seen == ids
    again = await get(client, acme, f"{base}/Users?startIndex=101&count=100")
    assert [u["id"] for u in again["Resources"]] == ids[100:200]


async def test_pages_mid_import_are_slices_of_the_current_order(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    # RFC 7644 §3.4.2.4 promises no consistency across pages; ours is that a page is
    # always the slice of the order at the time it is served. Users added after
    # the walk's position are appended and shift nothing; a delete shifts the rest.
    ids = await seed(db, acme, 30)
    first = await get(client, acme, f"{base}/Users?startIndex=1&count=10")
    assert [u["id"] for u in first["Resources"]] == ids[:10]
    ids += await seed(db, acme, 2, prefix="late")
    second = await get(client, acme, f"{base}/Users?startIndex=11&count=10")
    assert [u["id"] for u in second["Resources"]] == ids[10:20]
    await db.execute("DELETE FROM scim_users WHERE id = ANY($1::uuid[])", ids[:3])
    third = await get(client, acme, f"{base}/Users?startIndex=21&count=10")
    assert [u["id"] for u in third["Resources"]] == ids[23:32]
    assert third["totalResults"] == 29


@pytest.mark.parametrize(
    ("query", "expected_start", "expected_items"),
    [
        ("count=0", 1, 0),
        ("count=-5", 1, 0),
        ("startIndex=0&count=2", 1, 2),
        ("startIndex=-3&count=2", 1, 2),
        ("startIndex=5&count=10", 5, 1),
        ("startIndex=99&count=10", 99, 0),
        ("", 1, 5),
    ],
)
async def test_paging_parameters(
    client: Client,
    base: str,
    acme: OrgWithToken,
    db: asyncpg.Connection,
    query: str,
    expected_start: int,
    expected_items: int,
) -> None:
    await seed(db, acme, 5)
    page = await get(client, acme, f"{base}/Users?{query}")
    assert page["totalResults"] == 5
    assert page["startIndex"] == expected_start
    assert page["itemsPerPage"] == expected_items
    assert len(page["Resources"]) == expected_items
    for key in ("totalResults", "startIndex", "itemsPerPage"):
        assert isinstance(page[key], int)


async def test_count_is_capped_at_max_results(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    config = await get(client, acme, f"{base}/ServiceProviderConfig")
    assert config["filter"]["maxResults"] >= 200
    page = await get(client, acme, f"{base}/Users?count=100000")
    assert page["itemsPerPage"] == 0


async def test_bad_paging_values_are_400(client: Client, base: str, acme: OrgWithToken) -> None:
    for query in (
        "count=many",
        "startIndex=1.5",
        "sortOrder=sideways",
        "sortBy=emails",
        "sortBy=nope",
    ):
        resp = await client.get(f"{base}/Users?{query}", headers=acme.headers)
        assert resp.status == 400, query
        assert (await resp.json(content_type=None))["scimType"] == "invalidValue"


async def test_sorting(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    await seed(db, acme, 12)
    page = await get(
        client, acme, f"{base}/Users?sortBy=name.familyName&sortOrder=descending&count=5"
    )
    families = [u["name"]["familyName"] for u in page["Resources"]]
    assert families == sorted(families, reverse=True)
    assert families[0] == "Family0011"
    page = await get(client, acme, f"{base}/Users?sortBy=title&startIndex=2&count=3")
    assert [u["title"] for u in page["Resources"]] == ["Designer", "Designer", "Designer"]
    page = await get(client, acme, f"{base}/Users?sortBy=meta.created&sortOrder=ascending&count=1")
    assert page["Resources"][0]["userName"] == "user0000@example.com"


async def test_attributes_and_excluded_attributes(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    (user_id,) = await seed(db, acme, 1)
    page = await get(client, acme, f"{base}/Users?attributes=userName,name.givenName,emails.value")
    (user,) = page["Resources"]
    assert user == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": user_id,
        "userName": "user0000@example.com",
        "name": {"givenName": "Given0"},
        "emails": [{"value": "user0000@example.com"}],
    }
    single = await get(
        client, acme, f"{base}/Users/{user_id}?excludedAttributes=emails,meta,name.familyName"
    )
    assert "emails" not in single
    assert "meta" not in single
    assert single["name"] == {"givenName": "Given0"}
    assert single["id"] == user_id  # returned: always


async def test_post_search(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    await seed(db, acme, 10)
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'title eq "manager"',
        "attributes": ["userName"],
        "sortBy": "userName",
        "sortOrder": "descending",
        "startIndex": 1,
        "count": 2,
    }
    headers = {**acme.headers, "Content-Type": "application/scim+json"}
    for url in (f"{base}/Users/.search", f"{base}/.search"):
        resp = await client.post(url, headers=headers, data=dumps(body))
        assert resp.status == 200
        page = await resp.json(content_type=None)
        assert page["totalResults"] == 3
        assert [u["userName"] for u in page["Resources"]] == [
            "user0007@example.com",
            "user0004@example.com",
        ]
    resp = await client.post(
        f"{base}/Users/.search", headers=headers, data=dumps({"filter": "title pr"})
    )
    assert resp.status == 400


async def test_filter_errors_name_the_problem(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    cases = {
        "userName eq": "does not parse",
        '(userName eq "x"': "does not parse",
        'userName zz "x"': "does not parse",
        'nickname eq "x" and foo eq "y"': "Unknown attribute 'foo' at position 21",
        'active co "x"': "active is a boolean",
        'meta.created gt "yesterday"': "ISO 8601",
        "userName gt 5": "userName is a string",
        'password eq "x"': "cannot be used in a filter",
        'userName eq "' + "x" * 3000 + '"': "longer than",
    }
    for expression, detail in cases.items():
        resp = await client.get(f"{base}/Users?filter={quote(expression)}", headers=acme.headers)
        assert resp.status == 400, expression
        body = await resp.json(content_type=None)
        assert body["scimType"] == "invalidFilter", expression
        assert detail in body["detail"], (expression, body["detail"])


async def test_lookups_that_find_nothing_are_200(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    for expression in (
        'userName eq "abcdefgh@atko.com"',
        'id eq "7d5a8d9c"',
        'externalId eq "x"',
        'emails.value eq "x@y"',
    ):
        page = await get(
            client, acme, f"{base}/Users?filter={quote(expression)}&startIndex=1&count=100"
        )
        assert page == {
            "schemas": [LIST],
            "totalResults": 0,
            "startIndex": 1,
            "itemsPerPage": 0,
            "Resources": [],
        }


async def test_orgs_never_see_each_other(
    client: Client, base: str, acme: OrgWithToken, globex: OrgWithToken, db: asyncpg.Connection
) -> None:
    (acme_user,) = await seed(db, acme, 1, prefix="shared")
    page = await get(client, globex, f"{base}/Users")
    assert page["totalResults"] == 0
    lookup = quote('userName eq "shared0000@example.com"')
    page = await get(client, globex, f"{base}/Users?filter={lookup}")
    assert page["totalResults"] == 0
    for method in ("GET", "DELETE"):
        resp = await client.request(method, f"{base}/Users/{acme_user}", headers=globex.headers)
        assert resp.status == 404
    resp = await client.patch(
        f"{base}/Users/{acme_user}",
        headers={**globex.headers, "Content-Type": "application/scim+json"},
        data=json.dumps(
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"active": False}}],
            }
        ),
    )
    assert resp.status == 404
    # The same userName is free in another org.
    resp = await client.post(
        f"{base}/Users",
        headers={**globex.headers, "Content-Type": "application/scim+json"},
        data=dumps(okta_create_user("shared0000@example.com")),
    )
    assert resp.status == 201

"""Users and Teams pages, on data Okta provisioned through the real SCIM API."""

from __future__ import annotations

import json
import uuid

import asyncpg

from gateway.store import directory
from tests.conftest import OrgWithToken
from tests.dashboard.conftest import Client, SignedIn
from tests.payloads import OKTA_HEADERS, dumps, okta_create_user, okta_deactivate

SCIM = "/api/sch/scim/v2"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
XSS = "<script>alert(1)</script>"


async def create_user(client: Client, org: OrgWithToken, user_name: str, **kw: str) -> str:
    response = await client.post(
        f"{SCIM}/Users",
        data=dumps(okta_create_user(user_name, external_id=f"00u{uuid.uuid4().hex[:17]}", **kw)),
        headers={**OKTA_HEADERS, **org.headers},
    )
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def push_group(client: Client, org: OrgWithToken, name: str, members: list[str]) -> str:
    body = {"schemas": [GROUP], "displayName": name, "members": [{"value": m} for m in members]}
    response = await client.post(
        f"{SCIM}/Groups", data=json.dumps(body), headers={**OKTA_HEADERS, **org.headers}
    )
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def test_users_teams_and_history(admin: SignedIn, acme: OrgWithToken) -> None:
    client = admin.client
    empty = await (await client.get("/dashboard/users")).text()
    assert "No users yet" in empty
    assert "No teams yet" in await (await client.get("/dashboard/teams")).text()

    jane = await create_user(client, acme, "jane@acme.example")
    bob = await create_user(client, acme, "bob@acme.example", given="Bob", family="Stone")
    team = await push_group(client, acme, "Engineering", [jane, bob])
    patch = await client.patch(
        f"{SCIM}/Users/{bob}",
        data=dumps(okta_deactivate()),
        headers={**OKTA_HEADERS, **acme.headers},
    )
    assert patch.status == 200

    users = await (await client.get("/dashboard/users")).text()
    assert "jane@acme.example" in users
    assert "Jane Doe" in users
    assert "Engineering" in users
    assert "Deactivated" in users

    search = await (await client.get("/dashboard/users?q=JA")).text()
    assert "jane@acme.example" in search
    assert "bob@acme.example" not in search

    page = await (await client.get(f"/dashboard/users/{bob}")).text()
    assert "Bob Stone" in page
    assert "Deactivated" in page
    assert "Create user" in page
    assert "Deactivate user" in page
    assert f"/dashboard/teams/{team}" in page

    teams = await (await client.get("/dashboard/teams")).text()
    assert "Engineering" in teams
    team_page = await (await client.get(f"/dashboard/teams/{team}")).text()
    assert "2 members" in team_page
    assert "jane@acme.example" in team_page
    assert "bob@acme.example" in team_page
    assert "Push group" in team_page


async def test_what_okta_sent_is_rendered_as_text(admin: SignedIn, acme: OrgWithToken) -> None:
    client = admin.client
    user = await create_user(client, acme, "x@acme.example", given=XSS, family='"><img src=x>')
    team = await push_group(client, acme, XSS, [user])
    for path in (
        "/dashboard/users",
        f"/dashboard/users/{user}",
        "/dashboard/teams",
        f"/dashboard/teams/{team}",
    ):
        html = await (await client.get(path)).text()
        assert XSS not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
        assert "<img src=x>" not in html


async def test_another_orgs_users_and_teams_are_not_found(
    admin: SignedIn, globex: OrgWithToken
) -> None:
    client = admin.client
    user = await create_user(client, globex, "spy@globex.example")
    team = await push_group(client, globex, "Globex team", [user])
    assert (await client.get(f"/dashboard/users/{user}")).status == 404
    assert (await client.get(f"/dashboard/teams/{team}")).status == 404
    assert (await client.get("/dashboard/users/123")).status == 404
    assert "spy@globex.example" not in await (await client.get("/dashboard/users")).text()
    assert "Globex team" not in await (await client.get("/dashboard/teams")).text()


async def test_search_and_paging_follow_the_cursor(
    db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    rows = [
        (acme.org.id, uuid.uuid4(), name, name.casefold(), [name.casefold()])
        for name in ["a_1@x.test", "a%2@x.test", "ab@x.test", "Ac@x.test", "b@x.test"]
    ]
    await db.executemany(
        "INSERT INTO scim_users (org_id, id, user_name, user_name_ci, emails_ci, attrs, attrs_ci,"
        " created_at, updated_at, external_id)"
        " VALUES ($1, $2, $3, $4, $5, '{}', '{}', now(), now(), 'ext-' || $3)",
        rows,
    )
    first = await directory.search_users(db, acme.org.id, "a", limit=2)
    assert [u.user_name for u in first.items] == ["a%2@x.test", "a_1@x.test"]
    assert first.next_after is not None
    second = await directory.search_users(db, acme.org.id, "a", after=first.next_after, limit=2)
    assert [u.user_name for u in second.items] == ["ab@x.test", "Ac@x.test"]
    assert second.next_after is None
    # LIKE's wildcards are matched literally.
    literal = await directory.search_users(db, acme.org.id, "a_", limit=10)
    assert [u.user_name for u in literal.items] == ["a_1@x.test"]
    # An exact email or externalId also finds a user whose userName does not start with it.
    by_ext = await directory.search_users(db, acme.org.id, "ext-b@x.test", limit=10)
    assert [u.user_name for u in by_ext.items] == ["b@x.test"]
    assert await directory.count_users(db, acme.org.id) == 5

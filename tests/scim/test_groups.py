"""/Groups for Okta Push Groups (OIN PATCH, AIW PUT) and Entra, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import PUBLIC_BASE_URL, OrgWithToken
from tests.payloads import LIST, OKTA_HEADERS, PATCH_OP, dumps, okta_create_user

Client = TestClient[web.Request, web.Application]
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


class Api:
    def __init__(self, client: Client, base: str, org: OrgWithToken) -> None:
        self.client, self.base, self.headers = client, base, {**OKTA_HEADERS, **org.headers}

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        resp = await self.client.request(
            method,
            self.base + path,
            headers=self.headers,
            data=dumps(body) if body is not None else None,
        )
        text = await resp.text()
        return resp.status, (await resp.json(content_type=None)) if text else None

    async def user(self, name: str) -> str:
        status, body = await self.call("POST", "/Users", okta_create_user(f"{name}@example.com"))
        assert status == 201, body
        return str(body["id"])

    async def group(
        self, name: str = "Engineering", members: list[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [GROUP], "displayName": name, "members": []}
        if members:
            body["members"] = [{"value": m, "display": f"{m[:4]}@example.com"} for m in members]
        status, created = await self.call("POST", "/Groups", body)
        assert status == 201, created
        return dict(created)

    async def patch(self, group_id: str, *ops: dict[str, Any], query: str = "") -> tuple[int, Any]:
        return await self.call(
            "PATCH", f"/Groups/{group_id}{query}", {"schemas": [PATCH_OP], "Operations": list(ops)}
        )

    async def members(self, group_id: str) -> set[str]:
        status, body = await self.call("GET", f"/Groups/{group_id}")
        assert status == 200
        return {m["value"] for m in body.get("members", [])}


@pytest.fixture
def api(client: Client, base: str, acme: OrgWithToken) -> Api:
    return Api(client, base, acme)


async def test_okta_verify_lookup_and_create(api: Api, base: str) -> None:
    for path in ("/Groups?startIndex=1&count=100", "/Groups"):
        status, body = await api.call("GET", path)
        assert status == 200
        assert body == {
            "schemas": [LIST],
            "totalResults": 0,
            "startIndex": 1,
            "itemsPerPage": 0,
            "Resources": [],
        }
    status, body = await api.call(
        "GET", "/Groups?filter=displayName%20eq%20%22Engineering%22&startIndex=1&count=100"
    )
    assert (status, body["totalResults"]) == (200, 0)
    resp = await api.client.post(
        base + "/Groups",
        headers=api.headers,
        data=dumps({"schemas": [GROUP], "displayName": "Engineering", "members": []}),
    )
    assert resp.status == 201
    group = await resp.json(content_type=None)
    assert resp.headers["Location"] == f"{PUBLIC_BASE_URL}{base}/Groups/{group['id']}"
    assert group["displayName"] == "Engineering"
    assert group["members"] == []
    assert group["meta"]["resourceType"] == "Group"
    status, body = await api.call(
        "GET", "/Groups?filter=displayName%20eq%20%22engineering%22&startIndex=1&count=100"
    )
    assert [g["id"] for g in body["Resources"]] == [group["id"]]


async def test_oin_membership_patches_and_the_spurious_rename(
    api: Api, db: asyncpg.Connection
) -> None:
    u1, u2, u3 = [await api.user(n) for n in ("ann", "bob", "cat")]
    group = await api.group()
    status, body = await api.patch(
        group["id"],
        {
            "op": "add",
            "path": "members",
            "value": [
                {"value": u1, "display": "ann@example.com"},
                {"value": u2, "display": "bob@example.com"},
            ],
        },
    )
    assert (status, body) == (204, None)
    assert await api.members(group["id"]) == {u1, u2}
    status, _ = await api.patch(
        group["id"],
        {"op": "remove", "path": f'members[value eq "{u1}"]'},
        {"op": "add", "path": "members", "value": [{"value": u3, "display": "cat@example.com"}]},
    )
    assert status == 204
    assert await api.members(group["id"]) == {u2, u3}
    _, before = await api.call("GET", f"/Groups/{group['id']}")
    status, _ = await api.patch(
        group["id"], {"op": "replace", "value": {"id": group["id"], "displayName": "Engineering"}}
    )
    assert status == 204
    _, after = await api.call("GET", f"/Groups/{group['id']}")
    assert after["meta"]["version"] == before["meta"]["version"]
    notes = await db.fetchval(
        "SELECT notes FROM provisioning_log WHERE method = 'PATCH' ORDER BY id DESC LIMIT 1"
    )
    assert any("no change" in n for n in notes)
    status, _ = await api.patch(
        group["id"], {"op": "replace", "value": {"id": group["id"], "displayName": "Platform"}}
    )
    _, renamed = await api.call("GET", f"/Groups/{group['id']}")
    assert renamed["displayName"] == "Platform"
    assert {m["display"] for m in renamed["members"]} == {"bob@example.com", "cat@example.com"}
    status, error = await api.patch(
        group["id"], {"op": "replace", "value": {"id": str(uuid.uuid4()), "displayName": "X"}}
    )
    assert (status, error["scimType"]) == (400, "mutability")


async def test_push_now_replaces_members_including_with_none(api: Api) -> None:
    u1, u2 = [await api.user(n) for n in ("ann", "bob")]
    group = await api.group(members=[u1])
    assert await api.members(group["id"]) == {u1}
    await api.patch(group["id"], {"op": "replace", "path": "members", "value": [{"value": u2}]})
    assert await api.members(group["id"]) == {u2}
    await api.patch(group["id"], {"op": "replace", "path": "members", "value": []})
    assert await api.members(group["id"]) == set()


async def test_aiw_get_then_put_really_replaces_membership(api: Api) -> None:
    u1, u2, u3 = [await api.user(n) for n in ("ann", "bob", "cat")]
    group = await api.group(members=[u1, u2])
    _, fetched = await api.call("GET", f"/Groups/{group['id']}")
    fetched["members"] = [
        {"value": u3, "display": "cat@example.com"},
        {"value": u2, "display": "bob@example.com"},
    ]
    status, updated = await api.call("PUT", f"/Groups/{group['id']}", fetched)
    assert status == 200
    assert {m["value"] for m in updated["members"]} == {u2, u3}
    assert await api.members(group["id"]) == {u2, u3}
    status, _ = await api.call(
        "PUT",
        f"/Groups/{group['id']}",
        {"schemas": [GROUP], "displayName": "Engineering", "members": []},
    )
    assert status == 200
    assert await api.members(group["id"]) == set()
    status, error = await api.call(
        "PUT", f"/Groups/{group['id']}", {**fetched, "id": str(uuid.uuid4())}
    )
    assert (status, error["scimType"]) == (400, "mutability")


async def test_delete_group_keeps_users(api: Api) -> None:
    u1 = await api.user("ann")
    group = await api.group(members=[u1])
    assert (await api.call("DELETE", f"/Groups/{group['id']}"))[0] == 204
    assert (await api.call("GET", f"/Groups/{group['id']}"))[0] == 404
    assert (await api.call("DELETE", f"/Groups/{group['id']}"))[0] == 404
    assert (await api.call("GET", f"/Users/{u1}"))[0] == 200


async def test_entra_forms(api: Api) -> None:
    users = [await api.user(f"entra{i}") for i in range(5)]
    group = await api.group("Sales")
    status, _ = await api.patch(
        group["id"], {"op": "Add", "path": "members", "value": [{"value": u} for u in users]}
    )
    assert status == 204
    status, _ = await api.patch(
        group["id"],
        {"op": "Remove", "path": "members", "value": [{"value": users[0]}, {"value": users[1]}]},
    )
    assert status == 204
    assert await api.members(group["id"]) == set(users[2:])
    for user, expected in ((users[3], 1), (users[0], 0)):
        expression = quote(f'id eq "{group["id"]}" and members.value eq "{user}"')
        status, body = await api.call(
            "GET", f"/Groups?filter={expression}&excludedAttributes=members"
        )
        assert (status, body["totalResults"]) == (200, expected)
        assert "members" not in (body["Resources"] or [{}])[0]


async def test_members_must_be_users_of_this_org(
    api: Api, client: Client, base: str, globex: OrgWithToken
) -> None:
    mine = await api.user("ann")
    theirs = await Api(client, base, globex).user("zed")
    group = await api.group(members=[mine])
    for value in (theirs, str(uuid.uuid4()), "not-a-uuid"):
        status, error = await api.patch(
            group["id"],
            {"op": "replace", "value": {"displayName": "Changed"}},
            {"op": "add", "path": "members", "value": [{"value": value}]},
        )
        assert (status, error["scimType"]) == (400, "invalidValue")
        assert value in error["detail"]
    _, current = await api.call("GET", f"/Groups/{group['id']}")
    assert current["displayName"] == "Engineering"  # the failed PATCH changed nothing
    assert {m["value"] for m in current["members"]} == {mine}
    status, error = await api.call(
        "POST", "/Groups", {"schemas": [GROUP], "displayName": "X", "members": [{"value": theirs}]}
    )
    assert status == 400
    assert theirs in error["detail"]
    status, _ = await api.call("GET", "/Groups?filter=displayName%20eq%20%22X%22")
    assert (await api.call("GET", "/Groups?filter=displayName%20eq%20%22X%22"))[1][
        "totalResults"
    ] == 0


async def test_idempotent_adds_and_removes_are_noted(api: Api, db: asyncpg.Connection) -> None:
    u1, u2 = [await api.user(n) for n in ("ann", "bob")]
    group = await api.group(members=[u1])
    assert (
        await api.patch(group["id"], {"op": "add", "path": "members", "value": [{"value": u1}]})
    )[0] == 204
    assert (await api.patch(group["id"], {"op": "remove", "path": f'members[value eq "{u2}"]'}))[
        0
    ] == 204
    assert await api.members(group["id"]) == {u1}
    notes = await db.fetchval(
        "SELECT notes FROM provisioning_log WHERE method = 'PATCH' ORDER BY id DESC LIMIT 1"
    )
    assert notes == [f"remove matched no member: {u2}"]


async def test_display_names_are_unique_case_insensitively(api: Api) -> None:
    group = await api.group("Engineering")
    status, error = await api.call(
        "POST", "/Groups", {"schemas": [GROUP], "displayName": "ENGINEERING", "members": []}
    )
    assert (status, error["scimType"]) == (409, "uniqueness")
    assert group["id"] in error["detail"]
    other = await api.group("Design")
    status, error = await api.patch(
        other["id"], {"op": "replace", "path": "displayName", "value": "engineering"}
    )
    assert status == 409


async def test_users_show_their_groups(api: Api) -> None:
    u1, u2 = [await api.user(n) for n in ("ann", "bob")]
    eng = await api.group("Engineering", members=[u1, u2])
    ops = await api.group("Ops", members=[u1])
    _, user = await api.call("GET", f"/Users/{u1}")
    assert [(g["value"], g["display"], g["type"]) for g in user["groups"]] == [
        (eng["id"], "Engineering", "direct"),
        (ops["id"], "Ops", "direct"),
    ]
    assert user["groups"][0]["$ref"].endswith(f"/Groups/{eng['id']}")
    expression = quote(f'groups.value eq "{ops["id"]}"')
    _, found = await api.call("GET", f"/Users?filter={expression}")
    assert [u["id"] for u in found["Resources"]] == [u1]
    by_display = quote('groups.display eq "ops"')
    _, found = await api.call("GET", f"/Users?filter={by_display}")
    assert [u["id"] for u in found["Resources"]] == [u1]
    assert found["Resources"][0]["groups"] == user["groups"]
    # A page reads the teams of all its users at once: each as its own GET shows them.
    u3 = await api.user("cy")
    _, page = await api.call("GET", "/Users?count=10")
    for user_id in (u1, u2, u3):
        _, alone = await api.call("GET", f"/Users/{user_id}")
        listed = next(u for u in page["Resources"] if u["id"] == user_id)
        assert listed.get("groups") == alone.get("groups")
    assert [
        g["display"] for g in next(u for u in page["Resources"] if u["id"] == u2)["groups"]
    ] == ["Engineering"]
    # PUT and PATCH ignore groups on input and keep the memberships.
    status, _ = await api.call(
        "PUT", f"/Users/{u2}", {**okta_create_user("bob@example.com"), "groups": []}
    )
    assert status == 200
    assert await api.members(eng["id"]) == {u1, u2}


async def test_patch_can_return_the_group_when_asked(api: Api) -> None:
    u1 = await api.user("ann")
    group = await api.group()
    status, body = await api.patch(
        group["id"],
        {"op": "add", "path": "members", "value": [{"value": u1}]},
        query="?excludedAttributes=members",
    )
    assert status == 200
    assert body["displayName"] == "Engineering"
    assert "members" not in body
    status, body = await api.patch(
        group["id"],
        {"op": "replace", "path": "displayName", "value": "Eng"},
        query="?attributes=members",
    )
    assert status == 200
    assert [m["value"] for m in body["members"]] == [u1]


async def test_concurrent_adds_and_removes_lose_nothing(
    api: Api, db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    users = [str(uuid.uuid4()) for _ in range(300)]
    await db.execute(
        """INSERT INTO scim_users (org_id, id, user_name, user_name_ci, active, attrs, attrs_ci, created_at, updated_at)
           SELECT $1, u, u::text, u::text, true, jsonb_build_object('userName', u::text),
                  jsonb_build_object('userName', u::text), now(), now()
           FROM unnest($2::uuid[]) AS u""",
        acme.org.id,
        users,
    )
    group = await api.group()
    results = await asyncio.gather(
        *(
            api.patch(group["id"], {"op": "add", "path": "members", "value": [{"value": u}]})
            for u in users[:200]
        )
    )
    assert [s for s, _ in results] == [204] * 200
    assert await api.members(group["id"]) == set(users[:200])
    adds, removes = users[200:300], users[:100]
    calls = [
        api.patch(group["id"], {"op": "add", "path": "members", "value": [{"value": u}]})
        for u in adds
    ]
    calls += [
        api.patch(group["id"], {"op": "remove", "path": f'members[value eq "{u}"]'})
        for u in removes
    ]
    random.Random(3).shuffle(calls)
    results = await asyncio.gather(*calls)
    assert {s for s, _ in results} == {204}
    assert await api.members(group["id"]) == set(users[100:300])
    # A replace racing with adds ends in some serial order: the replaced set plus
    # exactly the adds that ran after it.
    replacement = users[:10]
    racing = users[290:300] + users[10:20]
    calls = [
        api.patch(
            group["id"],
            {"op": "replace", "path": "members", "value": [{"value": u} for u in replacement]},
        )
    ]
    calls += [
        api.patch(group["id"], {"op": "add", "path": "members", "value": [{"value": u}]})
        for u in racing
    ]
    await asyncio.gather(*calls)
    final = await api.members(group["id"])
    assert set(replacement) <= final
    assert final - set(replacement) <= set(racing)
    assert await db.fetchval("SELECT count(*) FROM scim_group_members") == len(final)


async def test_a_team_of_100000_members(
    api: Api, db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    group = await api.group("Everyone")
    await db.execute(
        """WITH u AS (
               INSERT INTO scim_users (org_id, id, user_name, user_name_ci, active, attrs, attrs_ci, created_at, updated_at)
               SELECT $1, gen_random_uuid(), 'bulk' || g, 'bulk' || g, true,
                      jsonb_build_object('userName', 'bulk' || g), jsonb_build_object('userName', 'bulk' || g), now(), now()
               FROM generate_series(1, 100000) AS g
               RETURNING id)
           INSERT INTO scim_group_members (org_id, group_id, user_id) SELECT $1, $2::uuid, id FROM u""",
        acme.org.id,
        group["id"],
    )
    newcomer = await api.user("newcomer")
    leaver = await db.fetchval(
        "SELECT user_id FROM scim_group_members WHERE group_id = $1 LIMIT 1", uuid.UUID(group["id"])
    )
    status, _ = await api.patch(
        group["id"],
        {"op": "remove", "path": f'members[value eq "{leaver}"]'},
        {"op": "add", "path": "members", "value": [{"value": newcomer}]},
        {"op": "replace", "value": {"id": group["id"], "displayName": "Everyone"}},
    )
    assert status == 204
    assert (
        await db.fetchval(
            "SELECT count(*) FROM scim_group_members WHERE group_id = $1", uuid.UUID(group["id"])
        )
        == 100000
    )
    status, page = await api.call("GET", "/Groups?excludedAttributes=members")
    assert status == 200
    assert page["Resources"][0]["displayName"] == "Everyone"
    assert "members" not in page["Resources"][0]
    status, found = await api.call(
        "GET", "/Groups?filter=displayName%20eq%20%22everyone%22&excludedAttributes=members"
    )
    assert found["totalResults"] == 1
    expression = quote(f'members.value eq "{newcomer}"')
    status, found = await api.call("GET", f"/Groups?filter={expression}&attributes=displayName")
    assert [g["displayName"] for g in found["Resources"]] == ["Everyone"]
    status, full = await api.call("GET", f"/Groups/{group['id']}")
    assert len(full["members"]) == 100000


async def test_long_member_lists_add_remove_and_replace(
    api: Api, db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    # More members than are removed by primary key (store.groups.FEW_MEMBERS): the
    # lists go to PostgreSQL as one JSON text each.
    ids = [
        str(i)
        for i in await db.fetchval(
            """WITH u AS (
                   INSERT INTO scim_users (org_id, id, user_name, user_name_ci, active, attrs,
                                           attrs_ci, created_at, updated_at)
                   SELECT $1, gen_random_uuid(), 'many' || g, 'many' || g, true,
                          jsonb_build_object('userName', 'many' || g),
                          jsonb_build_object('userName', 'many' || g), now(), now()
                   FROM generate_series(1, 300) AS g
                   RETURNING id)
               SELECT array_agg(id ORDER BY id) FROM u""",
            acme.org.id,
        )
    ]
    group = await api.group("Many")
    status, _ = await api.patch(
        group["id"],
        {"op": "add", "path": "members", "value": [{"value": i, "display": i[:8]} for i in ids]},
    )
    assert status == 204
    assert await api.members(group["id"]) == set(ids)
    # Entra removes by a value list; Okta by one filter per operation.
    strangers = sorted(str(uuid.uuid4()) for _ in range(12))
    status, _ = await api.patch(
        group["id"],
        {"op": "remove", "path": "members", "value": [{"value": i} for i in ids[:150]]},
        *[{"op": "remove", "path": f'members[value eq "{i}"]'} for i in ids[150:200] + strangers],
    )
    assert status == 204
    assert await api.members(group["id"]) == set(ids[200:])
    notes = await db.fetchval(
        "SELECT notes FROM provisioning_log WHERE method = 'PATCH' ORDER BY id DESC LIMIT 1"
    )
    assert notes == [f"remove matched no member: {', '.join(sorted(strangers)[:10])}"]
    members = [{"value": i, "display": i[:8]} for i in ids[:250]]
    body = {"schemas": [GROUP], "displayName": "Many", "members": members}
    status, replaced = await api.call("PUT", f"/Groups/{group['id']}", body)
    assert status == 200
    assert {m["value"] for m in replaced["members"]} == set(ids[:250])
    detail = await db.fetchval(
        "SELECT event_detail FROM provisioning_log WHERE method = 'PUT' ORDER BY id DESC LIMIT 1"
    )
    assert detail == "PUT with 250 members: added 200, removed 50"
    status, error = await api.call(
        "PUT",
        f"/Groups/{group['id']}",
        {**body, "members": [{"value": i} for i in ids[:120] + strangers]},
    )
    assert (status, error["scimType"]) == (400, "invalidValue")
    assert error["detail"].startswith(f"members: {', '.join(strangers[:10])} and 2 more are not")
    assert await api.members(group["id"]) == set(ids[:250])

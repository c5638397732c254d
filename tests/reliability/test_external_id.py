"""externalId is unique per org: the index decides races; a duplicate is 409 naming the holder."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from gateway.migrate import load_migrations, migrate
from tests.conftest import OrgWithToken
from tests.payloads import OKTA_HEADERS, dumps, okta_create_user, patch

Client = TestClient[web.Request, web.Application]


async def _create(
    client: Client, base: str, org: OrgWithToken, user_name: str, external_id: str
) -> ClientResponse:
    return await client.post(
        f"{base}/Users",
        headers={**OKTA_HEADERS, **org.headers},
        data=dumps(okta_create_user(user_name=user_name, external_id=external_id)),
    )


async def test_a_second_user_with_an_external_id_is_409_naming_the_first(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    first = await _create(client, base, acme, "a@example.com", "00uSAME")
    assert first.status == 201
    first_id = (await first.json(content_type=None))["id"]
    second = await _create(client, base, acme, "b@example.com", "00uSAME")
    assert second.status == 409
    body = await second.json(content_type=None)
    assert body["scimType"] == "uniqueness"
    assert first_id in body["detail"]
    assert "a@example.com" in body["detail"]


async def test_external_id_is_per_org_and_case_exact_and_may_be_absent(
    client: Client, base: str, acme: OrgWithToken, globex: OrgWithToken
) -> None:
    assert (await _create(client, base, acme, "a@example.com", "00uSAME")).status == 201
    assert (await _create(client, base, globex, "a@example.com", "00uSAME")).status == 201
    assert (await _create(client, base, acme, "c@example.com", "00usame")).status == 201
    for name in ("d@example.com", "e@example.com"):
        body = okta_create_user(user_name=name)
        del body["externalId"]
        resp = await client.post(
            f"{base}/Users", headers={**OKTA_HEADERS, **acme.headers}, data=dumps(body)
        )
        assert resp.status == 201


async def test_a_patch_to_a_taken_external_id_is_409_and_changes_nothing(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    assert (await _create(client, base, acme, "a@example.com", "00uA")).status == 201
    second = await _create(client, base, acme, "b@example.com", "00uB")
    user_id = (await second.json(content_type=None))["id"]
    resp = await client.patch(
        f"{base}/Users/{user_id}",
        headers={**OKTA_HEADERS, **acme.headers},
        data=dumps(patch({"op": "replace", "path": "externalId", "value": "00uA"})),
    )
    assert resp.status == 409
    assert "a@example.com" in (await resp.json(content_type=None))["detail"]
    assert await db.fetchval("SELECT external_id FROM scim_users WHERE id = $1", user_id) == "00uB"


async def test_concurrent_pairs_with_one_external_id_create_one_user_each(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    pairs = 20
    answers = await asyncio.gather(
        *(
            _create(client, base, acme, f"u{i}-{side}@example.com", f"00uPAIR{i}")
            for i in range(pairs)
            for side in ("x", "y")
        )
    )
    statuses = sorted(r.status for r in answers)
    assert statuses == [201] * pairs + [409] * pairs
    assert await db.fetchval("SELECT count(*) FROM scim_users") == pairs


async def test_the_migration_keeps_the_oldest_of_existing_duplicates(
    fresh_database_url: str,
) -> None:
    conn = await asyncpg.connect(fresh_database_url)
    try:
        before = [m for m in load_migrations() if "external_id_unique" not in m.name]
        await migrate(conn, before)
        org = await conn.fetchval("INSERT INTO orgs (slug, name) VALUES ('o', 'o') RETURNING id")
        for i in range(3):
            await conn.execute(
                "INSERT INTO scim_users (org_id, id, user_name, user_name_ci, external_id, "
                "attrs, attrs_ci, created_at, updated_at) VALUES ($1, gen_random_uuid(), $2, $2, "
                "'00uDUP', $3, $3, now(), now())",
                org,
                f"u{i}",
                '{"externalId": "00uDUP"}',
            )
        await migrate(conn)
        rows = await conn.fetch("SELECT user_name, external_id, attrs FROM scim_users ORDER BY seq")
        assert [r["external_id"] for r in rows] == ["00uDUP", None, None]
        assert [r["attrs"] for r in rows][1:] == ["{}", "{}"]
    finally:
        await conn.close()

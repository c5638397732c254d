"""Okta-shaped sequences, and the provisioning log they leave: events, outcomes,
reasons, targets, jobs and guidance, as an admin reads them."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.provlog.guidance import guidance_for_log
from gateway.store import provisioning_log as log_store
from gateway.store import tokens as token_store
from tests.conftest import PUBLIC_BASE_URL, OrgWithToken, revoke_settled
from tests.payloads import OKTA_HEADERS, PATCH_OP, dumps, okta_create_user

Client = TestClient[web.Request, web.Application]
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
REQUIRED_DETAIL = (
    "Attribute 'name.familyName' is required and missing or empty. In Okta, check the "
    "name.familyName mapping under Provisioning → To App and that the user has a value."
)


class Okta:
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

    async def provision(self, body: dict[str, Any]) -> tuple[int, Any]:
        """Okta's create: look the userName up, then POST."""
        lookup = quote(f'userName eq "{body["userName"]}"')
        status, found = await self.call("GET", f"/Users?filter={lookup}&startIndex=1&count=100")
        assert status == 200
        if found["totalResults"]:
            return 200, found["Resources"][0]
        return await self.call("POST", "/Users", body)


async def rows(db: asyncpg.Connection, org: OrgWithToken) -> list[log_store.LogRow]:
    found, _ = await log_store.list_log(db, org.org.id, log_store.LogFilter(), limit=10_000)
    return list(reversed(found))


async def test_first_sync_with_three_failures_a_fix_and_a_retry(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    okta = Okta(client, base, acme)
    assert (await okta.call("GET", "/Users?startIndex=1&count=2"))[0] == 200
    assert (await okta.call("GET", "/Groups?startIndex=1&count=100"))[0] == 200
    without_family = {7, 21, 42}
    for i in range(50):
        body = okta_create_user(
            f"learner{i:02d}@example.com", given=f"Learner{i}", family=f"Family{i}"
        )
        if i in without_family:
            del body["name"]["familyName"]
        status, _ = await okta.provision(body)
        assert status == (400 if i in without_family else 201)
    # The admin maps familyName in Okta and clicks Retry Selected.
    for i in sorted(without_family):
        body = okta_create_user(
            f"learner{i:02d}@example.com", given=f"Learner{i}", family=f"Family{i}"
        )
        assert (await okta.provision(body))[0] == 201

    log = await rows(db, acme)
    assert [(r.event, r.event_detail) for r in log[:2]] == [
        ("Test API credentials", None),
        ("Verify groups endpoint", None),
    ]
    counts = Counter((r.event, r.outcome, r.status) for r in log)
    assert counts == {
        ("Test API credentials", "success", 200): 1,
        ("Verify groups endpoint", "success", 200): 1,
        ("Look up user", "success", 200): 53,
        ("Create user", "success", 201): 50,
        ("Create user", "failure", 400): 3,
    }
    assert {r.event_detail for r in log if r.event == "Look up user"} == {
        "no user found: Okta creates it"
    }
    failures = [r for r in log if r.outcome == "failure"]
    assert [r.target_name for r in failures] == [
        f"learner{i:02d}@example.com" for i in sorted(without_family)
    ]
    for row in failures:
        assert row.reason == f"Bad Request. Errors reported by remote server: {REQUIRED_DETAIL}"
        assert row.target_type == "User"
        guidance = guidance_for_log(row)
        assert guidance is not None
        assert guidance.key == "missing_attribute"
        assert "name.familyName" in guidance.fix_first
        assert "Provisioning → To App" in guidance.fix_first
        assert "Retry Selected" in guidance.okta_next
    created = [r for r in log if r.event == "Create user" and r.outcome == "success"]
    assert all(r.target_id is not None and r.target_name and r.target_display for r in created)

    # One token, no five-minute gap: one job, the org's first sync.
    assert {r.job_id for r in log} != {None}
    assert len({r.job_id for r in log}) == 1
    (job,) = await log_store.list_jobs(db, acme.org.id)
    assert job.first_sync
    assert (job.requests, job.successes, job.failures, job.warnings) == (108, 105, 3, 0)
    assert job.counts == {
        "Create user": {"failure": 3, "success": 50},
        "Look up user": {"success": 53},
        "Test API credentials": {"success": 1},
        "Verify groups endpoint": {"success": 1},
    }


async def test_a_quiet_gap_starts_a_new_job(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    okta = Okta(client, base, acme)
    await okta.call("GET", "/Users?startIndex=1&count=2")
    await db.execute("UPDATE sync_jobs SET last_at = last_at - interval '6 minutes'")
    await okta.call("GET", "/Users?startIndex=1&count=2")
    first, second = await rows(db, acme)
    assert first.job_id != second.job_id
    jobs = await log_store.list_jobs(db, acme.org.id)
    assert [j.job_id for j in jobs] == [second.job_id, first.job_id]
    # Neither job provisioned anything: neither is the first sync.
    assert [j.first_sync for j in jobs] == [False, False]


async def test_first_sync_is_the_first_job_that_provisions(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    """The setup guide's order: Test API Credentials, then minutes later the first assignment."""
    okta = Okta(client, base, acme)
    await okta.call("GET", "/Users?startIndex=1&count=2")
    assert (await okta.call("GET", "/Nope"))[0] == 404  # a wrong URL: no provisioning
    await db.execute("UPDATE sync_jobs SET last_at = last_at - interval '6 minutes'")
    await db.execute(
        "UPDATE sync_job_counts SET last_at = last_at - interval '6 minutes', "
        "first_at = first_at - interval '6 minutes'"
    )
    await db.execute("UPDATE sync_job_summaries SET started_at = started_at - interval '6 minutes'")
    await okta.call("GET", '/Users?filter=userName eq "ann@example.com"&startIndex=1&count=100')
    await okta.call("POST", "/Users", okta_create_user("ann@example.com"))
    jobs = await log_store.list_jobs(db, acme.org.id)
    assert [(j.first_sync, j.provisioned) for j in jobs] == [(True, True), (False, False)]
    first = await log_store.first_sync(db, acme.org.id)
    assert first is not None
    assert first.job_id == jobs[0].job_id
    assert first.count("Create user", "success") == 1
    assert first.users == 1


async def test_a_group_push(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    okta = Okta(client, base, acme)
    users = [
        (await okta.call("POST", "/Users", okta_create_user(f"m{i}@example.com")))[1]["id"]
        for i in range(3)
    ]
    await db.execute("DELETE FROM provisioning_log")
    lookup = quote('displayName eq "Engineering"')
    await okta.call("GET", f"/Groups?filter={lookup}&startIndex=1&count=100")
    _, group = await okta.call(
        "POST", "/Groups", {"schemas": [GROUP], "displayName": "Engineering", "members": []}
    )
    gid = group["id"]
    await okta.call(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "add",
                    "path": "members",
                    "value": [{"value": u, "display": "x"} for u in users],
                },
            ],
        },
    )
    await okta.call(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "value": {"id": gid, "displayName": "Engineering"}},
            ],
        },
    )
    await okta.call(
        "PATCH",
        f"/Groups/{gid}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "remove", "path": f'members[value eq "{users[0]}"]'},
                {"op": "remove", "path": f'members[value eq "{users[0]}"]'},
            ],
        },
    )
    await okta.call(
        "PUT",
        f"/Groups/{gid}",
        {"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": users[1]}]},
    )
    await okta.call("DELETE", f"/Groups/{gid}")
    log = await rows(db, acme)
    assert [(r.event, r.event_detail, r.outcome) for r in log] == [
        ("Look up group", "no group found: Okta creates it", "success"),
        ("Push group", "create", "success"),
        ("Push group members", "add 3 / remove 0", "success"),
        ("Rename group", "unchanged name", "success"),
        ("Push group members", "add 0 / remove 2", "success"),
        ("Replace group members", "PUT with 1 member: added 1, removed 1", "success"),
        ("Delete group", None, "success"),
    ]
    assert {(r.target_type, str(r.target_id), r.target_name) for r in log[1:]} == {
        ("Group", gid, "Engineering")
    }


async def test_a_token_revoked_mid_run(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    okta = Okta(client, base, acme)
    assert (await okta.provision(okta_create_user("a@example.com")))[0] == 201
    await token_store.revoke_token(db, acme.token_id)
    await revoke_settled()
    status, _ = await okta.call("GET", "/Users?filter=" + quote('userName eq "b@example.com"'))
    assert status == 401
    last = (await rows(db, acme))[-1]
    assert (last.event, last.event_detail, last.outcome, last.status) == (
        "Authentication failed",
        "revoked",
        "failure",
        401,
    )
    assert last.token_id == acme.token_id
    assert last.reason is not None
    assert last.reason.startswith(
        "Unauthorized. Errors reported by remote server: This SCIM token was revoked."
    )
    guidance = guidance_for_log(last)
    assert guidance is not None
    assert guidance.key == "token_revoked"
    assert "Settings → SCIM" in guidance.fix_first
    assert "Test API Credentials" in guidance.fix_first


async def test_a_wrong_base_url(client: Client, acme: OrgWithToken, db: asyncpg.Connection) -> None:
    resp = await client.get("/scim/v2/Users?startIndex=1&count=2", headers=acme.headers)
    assert resp.status == 404
    (row,) = await rows(db, acme)
    assert (row.event, row.outcome, row.status) == ("Wrong base URL", "failure", 404)
    assert row.reason is not None
    assert row.reason.startswith(
        "Not Found. Errors reported by remote server: No SCIM endpoint at /scim/v2/Users"
    )
    guidance = guidance_for_log(row)
    assert guidance is not None
    assert guidance.key == "wrong_base_url"
    assert f"{PUBLIC_BASE_URL}/api/sch/scim/v2" in guidance.fix_first


async def test_silent_no_ops_are_warnings(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    okta = Okta(client, base, acme)
    body = okta_create_user()
    body["urn:ietf:params:scim:schemas:extension:custom:2.0:User"] = {"costCentre": "7"}
    _, user = await okta.call("POST", "/Users", body)
    _, fetched = await okta.call("GET", f"/Users/{user['id']}")
    await okta.call("PUT", f"/Users/{user['id']}", fetched)
    create, read, put = await rows(db, acme)
    assert (create.event, create.outcome) == ("Create user", "warning")
    assert create.event_detail == (
        "ignored attributes under urn:ietf:params:scim:schemas:extension:custom:2.0:User (schema not served)"
    )
    assert (read.event, read.outcome) == ("Read user", "success")
    assert (put.event, put.outcome) == ("Update user attributes", "warning")
    assert put.event_detail is not None
    assert "no change" in put.event_detail
    assert guidance_for_log(put) is not None


async def test_import_pages_are_numbered(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    okta = Okta(client, base, acme)
    for i in range(5):
        await okta.call("POST", "/Users", okta_create_user(f"i{i}@example.com"))
    await db.execute("DELETE FROM provisioning_log")
    for start in (1, 3, 5):
        await okta.call("GET", f"/Users?startIndex={start}&count=2")
    await okta.call(
        "GET", f"/Users/{(await okta.call('GET', '/Users?count=1'))[1]['Resources'][0]['id']}"
    )
    log = await rows(db, acme)
    assert [(r.event, r.event_detail) for r in log[:3]] == [
        ("Test API credentials", None),
        ("Import users", "page 2 of 3"),
        ("Import users", "page 3 of 3"),
    ]
    assert (log[-1].event, log[-1].target_type) == ("Read user", "User")


async def test_duplicate_accounts_across_user_name_and_email(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    okta = Okta(client, base, acme)
    _, first = await okta.call("POST", "/Users", okta_create_user("jane.doe@example.com"))
    # Okta's username format switched from mail to an id-like login: same person, new userName.
    second_body = okta_create_user("jdoe")
    second_body["emails"] = [{"primary": True, "value": "Jane.Doe@example.com", "type": "work"}]
    status, second = await okta.call("POST", "/Users", second_body)
    assert status == 201
    third = okta_create_user("someone.else@example.com")
    await okta.call("POST", "/Users", third)
    first_row, second_row, third_row = await rows(db, acme)
    assert first_row.outcome == "success"
    assert third_row.outcome == "success"
    assert second_row.outcome == "warning"
    assert second_row.event == "Create user"
    assert second_row.code == "duplicate_account"
    assert second_row.code_args == {
        "other_id": first["id"],
        "other_user_name": "jane.doe@example.com",
        "email": "jane.doe@example.com",
        "matched_as": "userName",
    }
    assert second_row.event_detail == (
        f"possible duplicate account: user jane.doe@example.com ({first['id']}) has "
        "jane.doe@example.com as its userName"
    )
    guidance = guidance_for_log(second_row)
    assert guidance is not None
    assert first["id"] in guidance.what_happened
    # An update that gives a user someone else's email is flagged the same way.
    patch_body = {
        "schemas": [PATCH_OP],
        "Operations": [
            {
                "op": "add",
                "path": "emails",
                "value": [{"value": "someone.else@example.com", "type": "other"}],
            },
        ],
    }
    await okta.call("PATCH", f"/Users/{first['id']}", patch_body)
    last = (await rows(db, acme))[-1]
    assert (last.event, last.outcome) == ("Update user attributes", "warning")
    assert last.event_detail is not None
    assert "has someone.else@example.com as its userName" in last.event_detail
    assert second["id"] != first["id"]

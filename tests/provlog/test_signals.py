"""Misconfiguration signals, from real traffic through the server."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.provlog.signals import org_signals
from gateway.store import tokens as token_store
from tests.conftest import OrgWithToken, revoke_settled
from tests.payloads import OKTA_HEADERS, dumps, okta_create_user

Client = TestClient[web.Request, web.Application]


async def test_signals_of_a_misconfigured_org(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    headers = {**OKTA_HEADERS, **acme.headers}

    async def post(body: dict[str, object]) -> str:
        resp = await client.post(f"{base}/Users", headers=headers, data=dumps(body))
        assert resp.status == 201
        return str((await resp.json(content_type=None))["id"])

    jane = await post(okta_create_user("jane@example.com"))
    okta_id = okta_create_user("00ujl29u0le5T6Aj10h7")
    okta_id["emails"][0]["value"] = "someone@example.com"
    await post(okta_id)
    jdoe = okta_create_user("jdoe")
    jdoe["emails"] = [{"value": "jdoe.mail@example.com", "primary": True}]
    await post(jdoe)
    await post(okta_create_user("jdoe.mail@example.com"))  # the same person, by email
    await post(okta_create_user("Runscope300Hfluaklab151@atko.com"))
    for _ in range(2):  # AIW: GET then PUT
        fetched = await (await client.get(f"{base}/Users/{jane}", headers=headers)).json(
            content_type=None
        )
        fetched["title"] = f"Title {_}"
        assert (
            await client.put(f"{base}/Users/{jane}", headers=headers, data=dumps(fetched))
        ).status == 200
    await client.get(f"{base}//Users?startIndex=1&count=2", headers=headers)
    await token_store.revoke_token(db, acme.token_id)
    await revoke_settled()
    for _ in range(3):
        assert (await client.get(f"{base}/Users", headers=headers)).status == 401

    signals = {s.kind: s for s in await org_signals(db, acme.org.id)}
    assert set(signals) == {
        "app_kind",
        "user_names_are_okta_ids",
        "user_names_not_emails",
        "wrong_base_url",
        "revoked_token_in_use",
        "spec_test_users",
        "duplicate_accounts",
    }
    assert "App Integration Wizard" in signals["app_kind"].message
    assert signals["user_names_are_okta_ids"].examples == ["00ujl29u0le5T6Aj10h7"]
    assert signals["user_names_not_emails"].count == 2
    assert "ends with a slash" in signals["wrong_base_url"].message
    assert signals["revoked_token_in_use"].count == 3
    assert signals["spec_test_users"].examples == ["Runscope300Hfluaklab151@atko.com"]
    assert (
        signals["duplicate_accounts"]
        .examples[0]
        .startswith("jdoe.mail@example.com = email of jdoe")
    )


async def test_a_clean_org_has_no_signals(db: asyncpg.Connection, acme: OrgWithToken) -> None:
    assert await org_signals(db, acme.org.id) == []

"""Authentication on the SCIM base path: every 401 reason, token lifecycle, org binding."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.appkeys import DB_POOL
from gateway.settings import Settings
from gateway.store import tokens as token_store
from gateway.tokens import generate_token
from tests.conftest import OrgWithToken

Client = TestClient[web.Request, web.Application]
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


async def get_spc(client: Client, base: str, headers: dict[str, str]) -> tuple[int, Any, Any]:
    resp = await client.get(f"{base}/ServiceProviderConfig", headers=headers)
    return resp.status, await resp.json(content_type=None), resp.headers


async def assert_401(client: Client, base: str, headers: dict[str, str]) -> str:
    status, body, resp_headers = await get_spc(client, base, headers)
    assert status == 401
    assert resp_headers["WWW-Authenticate"].startswith("Bearer")
    assert resp_headers["Content-Type"].startswith("application/scim+json")
    assert body["schemas"] == [ERROR]
    assert body["status"] == "401"
    assert body["detail"]
    return str(body["detail"])


async def test_valid_token_in_bearer_and_raw_header_forms(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    for header in (f"Bearer {acme.token}", acme.token):
        status, body, _ = await get_spc(client, base, {"Authorization": header})
        assert status == 200, body


async def test_each_failure_reason_has_its_own_detail(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    token = acme.token
    revoked_token, info = await token_store.create_token(db, acme.org.id)
    await token_store.revoke_token(db, info.id)
    expired_token, info = await token_store.create_token(
        db, acme.org.id, expires_in=timedelta(days=1)
    )
    await db.execute(
        "UPDATE scim_tokens SET expires_at = now() - interval '1 second' WHERE id = $1", info.id
    )
    unknown = generate_token()
    cases = {
        "missing": {},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "double": {"Authorization": f"Bearer Bearer {token}"},
        "quoted": {"Authorization": f'Bearer "{token}"'},
        "zero-width": {"Authorization": f"Bearer {token}\u200b"},
        "not ours": {"Authorization": "non-token"},
        "truncated": {"Authorization": f"Bearer {token[:-5]}"},
        "too long": {"Authorization": f"Bearer {token}x"},
        "mistyped": {
            "Authorization": f"Bearer {token[:20]}{'A' if token[20] != 'A' else 'B'}{token[21:]}"
        },
        "unknown": {"Authorization": f"Bearer {unknown}"},
        "revoked": {"Authorization": f"Bearer {revoked_token}"},
        "expired": {"Authorization": f"Bearer {expired_token}"},
    }
    details = {name: await assert_401(client, base, headers) for name, headers in cases.items()}
    # quoted and zero-width share a reason (characters around the token); all others differ.
    assert details["quoted"] == details["zero-width"]
    del details["zero-width"]
    assert len(set(details.values())) == len(details), details
    assert "truncated — copy it again from Settings → SCIM" in details["truncated"]
    assert "revoked" in details["revoked"]
    assert "expired" in details["expired"]
    assert "Bearer Bearer" in details["double"]
    rows = await db.fetch(
        "SELECT auth_failure, detail, response_body FROM provisioning_log ORDER BY id"
    )
    assert [r["auth_failure"] for r in rows] == [
        "missing",
        "basic_scheme",
        "double_prefix",
        "wrapped",
        "wrapped",
        "not_a_scim_token",
        "truncated",
        "too_long",
        "mistyped",
        "unknown",
        "revoked",
        "expired",
    ]
    for secret in (token, revoked_token, expired_token, unknown, token[:-5]):
        for row in rows:
            assert secret not in (row["detail"] or "") + (row["response_body"] or "")


async def refused_within_a_second(client: Client, base: str, headers: dict[str, str]) -> str:
    """The first 401 after a change to the token, which must come within one second
    (a process reuses a token's authentication for at most AUTH_CACHE_MS)."""
    changed = time.monotonic()
    while (await get_spc(client, base, headers))[0] == 200:
        assert time.monotonic() - changed < 1.0, "the token still worked a second later"
        await asyncio.sleep(0.02)
    return await assert_401(client, base, headers)


async def test_revocation_takes_effect_within_a_second(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    assert (await get_spc(client, base, acme.headers))[0] == 200
    await token_store.revoke_token(db, acme.token_id)
    assert "revoked" in await refused_within_a_second(client, base, acme.headers)


async def test_expiry(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    token, info = await token_store.create_token(db, acme.org.id, expires_in=timedelta(days=30))
    headers = {"Authorization": f"Bearer {token}"}
    assert (await get_spc(client, base, headers))[0] == 200
    await db.execute(
        "UPDATE scim_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1", info.id
    )
    assert "expired" in await refused_within_a_second(client, base, headers)


async def test_truncated_tokens_are_rejected_without_a_token_query(
    client: Client, app: web.Application, base: str, acme: OrgWithToken
) -> None:
    queries: list[str] = []

    def log_query(record: Any) -> None:
        queries.append(record.query)

    pool = app[DB_POOL]
    holders = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        for conn in holders:
            conn.add_query_logger(log_query)
    finally:
        for conn in holders:
            await pool.release(conn)
    for cut in range(1, len(acme.token)):
        status, _, _ = await get_spc(client, base, {"Authorization": f"Bearer {acme.token[:cut]}"})
        assert status == 401
    assert queries, "the query logger saw nothing: the test would prove nothing"
    assert not [q for q in queries if "scim_tokens" in q]
    queries.clear()
    await get_spc(client, base, acme.headers)
    assert [q for q in queries if "scim_tokens" in q]


async def test_last_use_is_recorded_at_most_once_a_minute(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    headers = {**acme.headers, "User-Agent": "Okta SCIM Client 1.0.0"}
    await get_spc(client, base, headers)
    first = await db.fetchrow(
        "SELECT last_used_at, last_used_user_agent, host(last_used_ip) AS ip FROM scim_tokens WHERE id = $1",
        acme.token_id,
    )
    assert first is not None
    assert first["last_used_at"] is not None
    assert first["last_used_user_agent"] == "Okta SCIM Client 1.0.0"
    assert first["ip"] == "127.0.0.1"
    await get_spc(client, base, {**acme.headers, "User-Agent": "other"})
    second = await db.fetchrow(
        "SELECT last_used_at, last_used_user_agent FROM scim_tokens WHERE id = $1", acme.token_id
    )
    assert second is not None
    assert second["last_used_at"] == first["last_used_at"]
    assert second["last_used_user_agent"] == "Okta SCIM Client 1.0.0"
    await db.execute(
        "UPDATE scim_tokens SET last_used_at = now() - interval '61 seconds' WHERE id = $1",
        acme.token_id,
    )
    # This process reuses the token's authentication for a moment: wait it out.
    await asyncio.sleep(Settings().auth_cache_seconds)
    await get_spc(client, base, {**acme.headers, "User-Agent": "other"})
    assert (
        await db.fetchval(
            "SELECT last_used_user_agent FROM scim_tokens WHERE id = $1", acme.token_id
        )
        == "other"
    )


async def test_requests_are_filed_under_the_tokens_org(
    client: Client, base: str, acme: OrgWithToken, globex: OrgWithToken, db: asyncpg.Connection
) -> None:
    await get_spc(client, base, acme.headers)
    await get_spc(client, base, {**globex.headers, "X-Org": "acme"})
    rows = await db.fetch("SELECT org_id, token_id FROM provisioning_log ORDER BY id")
    assert [(r["org_id"], r["token_id"]) for r in rows] == [
        (acme.org.id, acme.token_id),
        (globex.org.id, globex.token_id),
    ]


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Token"])
async def test_odd_headers_never_500(
    client: Client, base: str, header: str, acme: OrgWithToken
) -> None:
    status, body, _ = await get_spc(client, base, {"Authorization": header})
    assert status == 401
    assert body["detail"]

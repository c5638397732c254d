"""Database away or busy → 503 with an integer Retry-After, never 500; recovery without a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse

from gateway.db import is_transient
from gateway.embedded import ControlledPostgres
from tests.conftest import OrgWithToken, make_org, revoke_settled
from tests.payloads import OKTA_HEADERS, dumps, okta_create_user, okta_deactivate
from tests.reliability.conftest import Client, MakeClient
from tests.reliability.routes import Flaky, Holder

BASE = "/api/sch/scim/v2"


@pytest.fixture
async def org(controlled_db: asyncpg.Connection) -> OrgWithToken:
    return await make_org(controlled_db, "acme")


def assert_unavailable(resp: ClientResponse, body: dict[str, Any]) -> None:
    assert resp.status == 503, body
    assert resp.headers["Retry-After"].isdigit()
    assert body["status"] == "503"
    assert "temporarily unavailable" in body["detail"]


async def scim(
    client: Client, org: OrgWithToken, method: str, path: str, body: Any = None
) -> tuple[ClientResponse, Any]:
    resp = await client.request(
        method,
        BASE + path,
        headers={**OKTA_HEADERS, **org.headers},
        data=dumps(body) if body is not None else None,
    )
    return resp, await resp.json(content_type=None)


async def until_ready(client: Client, attempts: int = 40) -> int:
    """Poll /readyz every 50 ms; the number of polls it took (the recovery bound is 2 s)."""
    for attempt in range(attempts):
        if (await client.get("/readyz")).status == 200:
            return attempt
        await asyncio.sleep(0.05)
    raise AssertionError("not ready after 2 s")


async def test_a_stopped_database_is_503_and_the_gateway_recovers_by_itself(
    make_client: MakeClient, org: OrgWithToken, controlled_pg: ControlledPostgres
) -> None:
    client = await make_client()
    resp, user = await scim(client, org, "POST", "/Users", okta_create_user())
    assert resp.status == 201
    controlled_pg.stop("fast")  # terminates the pool's backends: admin shutdown
    # Past the moment the token's authentication is reused: every request needs the database.
    await revoke_settled()
    for method, path, body in (
        ("GET", f"/Users/{user['id']}", None),
        ("GET", "/Users?filter=userName%20eq%20%22x%40example.com%22", None),
        ("PATCH", f"/Users/{user['id']}", okta_deactivate()),
        ("POST", "/Users", okta_create_user(user_name="b@example.com")),
        ("GET", "/ServiceProviderConfig", None),
    ):
        resp, answer = await scim(client, org, method, path, body)
        assert_unavailable(resp, answer)
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 503
    controlled_pg.start()
    await until_ready(client)
    resp, _ = await scim(client, org, "PATCH", f"/Users/{user['id']}", okta_deactivate())
    assert resp.status == 200


async def test_the_gateway_starts_without_its_database_and_connects_when_it_appears(
    make_client: MakeClient, org: OrgWithToken, controlled_pg: ControlledPostgres
) -> None:
    controlled_pg.stop("fast")
    client = await make_client()
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["database"] == "connecting"
    resp, answer = await scim(client, org, "GET", "/Users")
    assert_unavailable(resp, answer)
    controlled_pg.start()
    await until_ready(client)
    resp, _ = await scim(client, org, "POST", "/Users", okta_create_user())
    assert resp.status == 201


async def test_terminated_backends_are_503_then_replaced(
    make_client: MakeClient, org: OrgWithToken, controlled_db: asyncpg.Connection
) -> None:
    client = await make_client(db_pool_min_size=3)
    resp, user = await scim(client, org, "POST", "/Users", okta_create_user())
    assert resp.status == 201
    await controlled_db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'scim-gateway'"
    )
    statuses = []
    for _ in range(6):
        resp, _ = await scim(client, org, "GET", f"/Users/{user['id']}")
        statuses.append(resp.status)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[-1] == 200
    assert await controlled_db.fetchval("SELECT count(*) FROM scim_users") == 1


async def test_a_row_locked_too_long_is_503_with_retry_after_not_a_wait(
    make_client: MakeClient, org: OrgWithToken, controlled_pg: ControlledPostgres
) -> None:
    client = await make_client()
    resp, user = await scim(client, org, "POST", "/Users", okta_create_user())
    locker = await asyncpg.connect(controlled_pg.url)
    try:
        async with locker.transaction():
            await locker.execute("SELECT 1 FROM scim_users WHERE id = $1 FOR UPDATE", user["id"])
            await locker.execute(
                "UPDATE scim_users SET version = version + 1 WHERE id = $1", user["id"]
            )
            resp, answer = await scim(
                client, org, "PATCH", f"/Users/{user['id']}", okta_deactivate()
            )
            assert_unavailable(resp, answer)
    finally:
        await locker.close()
    resp, _ = await scim(client, org, "PATCH", f"/Users/{user['id']}", okta_deactivate())
    assert resp.status == 200


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
    ],
    ids=["deadlock", "serialization"],
)
async def test_lost_races_are_retried_a_bounded_number_of_times_then_503(
    make_client: MakeClient, org: OrgWithToken, error: Exception
) -> None:
    twice = Flaky(error, failures=2)
    client = await make_client(twice.add)
    resp, body = await scim(client, org, "GET", "/_test/flaky")
    assert (resp.status, body) == (200, {"calls": 3})
    always = Flaky(error, failures=100)
    client = await make_client(always.add)
    resp, body = await scim(client, org, "GET", "/_test/flaky")
    assert_unavailable(resp, body)
    assert always.calls == 3


async def test_a_full_pool_is_503_after_a_bounded_wait(
    make_client: MakeClient, org: OrgWithToken, controlled_db: asyncpg.Connection
) -> None:
    other = await make_org(controlled_db, "globex")
    holder = Holder()
    client = await make_client(holder.add, db_pool_min_size=1, db_pool_max_size=1)
    held = asyncio.create_task(scim(client, org, "GET", "/_test/hold"))
    await holder.until_holding(1)
    resp, answer = await scim(client, other, "GET", "/Users")
    assert_unavailable(resp, answer)
    holder.release.set()
    assert (await held)[0].status == 200
    resp, _ = await scim(client, other, "GET", "/Users")
    assert resp.status == 200


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.exceptions.CrashShutdownError("crash"), True),
        (asyncpg.exceptions.TooManyConnectionsError("too many clients"), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle"), True),
        (asyncpg.exceptions.SerializationError("serialize"), True),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), True),
        (asyncpg.exceptions.LockNotAvailableError("lock timeout"), True),
        (asyncpg.exceptions.QueryCanceledError("statement timeout"), True),
        (asyncpg.exceptions.InterfaceError("pool is closing"), True),
        (asyncpg.exceptions.UniqueViolationError("duplicate"), False),
        (asyncpg.exceptions.UndefinedColumnError("no column"), False),
        (ValueError("bug"), False),
    ],
)
def test_which_failures_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient

"""/metrics: every request of every sub-app, counts equal to the provisioning log's,
database state, pool and process gauges, bounded labels, and who may scrape."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.settings import Settings, SettingsError
from gateway.store import tokens as token_store
from tests.conftest import PUBLIC_BASE_URL, OrgWithToken, make_org
from tests.metrics_text import Scrape
from tests.okta_sync import first_sync
from tests.served import free_port

Client = TestClient[web.Request, web.Application]
METRICS_TOKEN = "metrics-token-for-tests-0123456789"
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, public_base_url=PUBLIC_BASE_URL, metrics_token=METRICS_TOKEN
    )


async def scrape(client: Client) -> Scrape:
    resp = await client.get("/metrics", headers=SCRAPE)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    return Scrape(await resp.text())


async def log_counts(db: asyncpg.Connection) -> dict[tuple[str, str], float]:
    rows = await db.fetch(
        "SELECT event, outcome, count(*) AS n FROM provisioning_log GROUP BY event, outcome"
    )
    return {(r["event"], r["outcome"]): float(r["n"]) for r in rows}


async def code_counts(db: asyncpg.Connection) -> dict[str, dict[tuple[str, ...], float]] | None:
    """Failures and warnings by the log's reason code; None while the log has no code column."""
    column = await db.fetchval(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'provisioning_log' "
        "AND column_name IN ('code', 'reason_code') ORDER BY column_name LIMIT 1"
    )
    if column is None:
        return None
    rows = await db.fetch(
        f"SELECT outcome, coalesce({column}, 'uncoded') AS code, count(*) AS n "  # noqa: S608
        "FROM provisioning_log WHERE outcome IN ('failure', 'warning') GROUP BY 1, 2"
    )
    found: dict[str, dict[tuple[str, ...], float]] = {"failure": {}, "warning": {}}
    for r in rows:
        found[r["outcome"]][(r["code"],)] = float(r["n"])
    return found


async def test_every_sub_app_is_counted_by_route_template_without_ids_or_secrets(
    client: Client, base: str, acme: OrgWithToken
) -> None:
    missing_id = "0b8d3c1e-49a4-4a8e-9f7e-2b1d6f5e4c3a"
    assert (await client.get(f"{base}/Users/{missing_id}", headers=acme.headers)).status == 404
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/scim/v2/Users/jane@example.com", headers=acme.headers)).status == 404
    assert (await client.get(f"{base}/Users", headers={"Authorization": "Bearer x"})).status == 401
    s = await scrape(client)
    requests = s.by("scim_http_requests_total", "app", "route", "method", "status")
    assert requests[("scim", f"{base}/Users/{{id}}", "GET", "404")] == 1
    assert requests[("root", "/healthz", "GET", "200")] == 1
    assert requests[("root", "unmatched", "GET", "404")] == 1
    assert requests[("scim", f"{base}/Users", "GET", "401")] == 1
    assert s.value("scim_http_request_duration_seconds_count", route="/healthz") == 1
    assert s.value("scim_http_requests_in_flight", app="root") == 1  # this scrape
    # Buckets reach past Okta's 60-second timeout.
    assert s.samples("scim_http_request_duration_seconds_bucket", le="90.0")
    assert s.value("scim_auth_failures_total", reason="not_a_scim_token") == 1
    # Label sets exist before their first count, so dashboards show 0, not "No data".
    assert s.value("scim_auth_failures_total", reason="revoked") == 0
    assert s.value("scim_provisioning_events_total", event="Create user", outcome="failure") == 0
    for secret in (missing_id, "jane@example.com", acme.token[8:20], 'route="/scim/v2'):
        assert secret not in s.text


async def test_provisioning_counts_equal_the_log_after_an_okta_first_sync(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    result = await first_sync(client, base, acme.token, users=24, without_family=frozenset({5}))
    s = await scrape(client)
    logged = await log_counts(db)
    assert s.by("scim_provisioning_events_total", "event", "outcome") == logged
    assert logged[("Create user", "failure")] == 2  # the 400 and the 409
    assert logged[("Wrong base URL", "failure")] == 1
    failures = sum(n for (_, outcome), n in logged.items() if outcome == "failure")
    assert s.value("scim_provisioning_failures_total") == failures
    warnings = sum(n for (_, outcome), n in logged.items() if outcome == "warning")
    assert s.value("scim_provisioning_warnings_total") == warnings
    coded = await code_counts(db)
    if coded is not None:  # the log keeps reason codes: the metrics count them alike
        assert s.by("scim_provisioning_failures_total", "code") == coded["failure"]
        assert s.by("scim_provisioning_warnings_total", "code") == coded["warning"]
    # Every request was counted at the root, once; the scrape itself is not yet.
    assert s.value("scim_http_requests_total") == result.requests
    assert s.value("scim_http_requests_total", status="409") == 1
    assert s.value("scim_auth_failures_total", reason="truncated") == 2
    assert s.value("scim_provisioning_log_write_failures_total") == 0
    # The 409 was decided by the unique index: the pool saw the violation.
    assert s.value("scim_db_query_errors_total", error_class="integrity_constraint_violation") >= 1


async def test_database_state_is_read_at_scrape_time(
    client: Client, base: str, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    await token_store.create_token(db, acme.org.id, expires_in=timedelta(days=10))
    await first_sync(client, base, acme.token, users=12, without_family=frozenset({4}))
    s = await scrape(client)
    assert s.value("scim_state_up") == 1
    assert s.value("scim_users", state="active") == 10
    assert s.value("scim_users", state="deactivated") == 1
    assert s.value("scim_teams") == 1
    assert s.value("scim_tokens_active") == 2
    assert 9 * 86400 < s.value("scim_token_soonest_expiry_seconds") <= 10 * 86400
    assert 0 <= s.value("scim_seconds_since_last_request") < 60
    assert s.value("scim_sync_jobs", state="running") == 1
    assert s.value("scim_sync_jobs", state="stalled") == 0
    assert s.samples("scim_team_memberships")
    # A stalled job: quiet for 20 minutes with the failed user not yet retried.
    await db.execute("UPDATE sync_jobs SET last_at = now() - interval '20 minutes'")
    s = await scrape(client)
    assert s.value("scim_sync_jobs", state="stalled") == 1
    assert s.value("scim_sync_jobs", state="running") == 0


async def test_pool_readiness_loop_lag_and_build_info(client: Client) -> None:
    s = await scrape(client)
    assert s.value("scim_ready") == 1
    assert s.value("scim_db_pool_max_connections") == 10
    [(labels, value)] = s.samples("scim_gateway_build_info")
    assert value == 1
    assert labels["version"] == "0.1.0"
    assert labels["git_commit"]
    # The sampler runs every second.
    for _ in range(50):
        s = await scrape(client)
        if s.value("scim_db_pool_connections") >= 1:
            break
        await asyncio.sleep(0.1)
    assert s.value("scim_db_pool_connections") >= 1
    assert s.value("scim_db_pool_acquire_seconds_count") >= 1
    assert 0 <= s.value("scim_event_loop_lag_seconds") < 5


async def test_state_up_is_zero_when_the_database_is_gone(
    client: Client, app: web.Application, db: asyncpg.Connection
) -> None:
    # The state query fails as it would on a database that went away mid-scrape.
    await db.execute("ALTER TABLE sync_jobs RENAME TO sync_jobs_away")
    try:
        s = await scrape(client)
    finally:
        await db.execute("ALTER TABLE sync_jobs_away RENAME TO sync_jobs")
    assert s.value("scim_state_up") == 0
    assert not s.samples("scim_users")
    assert (
        s.value("scim_db_query_errors_total", error_class="syntax_error_or_access_rule_violation")
        >= 1
    )


# -- who may scrape --------------------------------------------------------------


@pytest.fixture
async def no_token_client(
    aiohttp_client: AiohttpClient, database_url: str, db: asyncpg.Connection
) -> Client:
    return await aiohttp_client(create_app(Settings(database_url=database_url)))


async def test_main_port_serves_no_metrics_without_a_token_setting(no_token_client: Client) -> None:
    resp = await no_token_client.get("/metrics")
    assert resp.status == 404
    assert "METRICS_LISTEN" in await resp.text()
    resp = await no_token_client.get("/metrics", headers=SCRAPE)
    assert resp.status == 404


async def test_main_port_needs_the_bearer_token(client: Client) -> None:
    assert (await client.get("/metrics")).status == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 34})
    assert wrong.status == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/metrics", headers=SCRAPE)).status == 200


@pytest.fixture
async def listener(
    aiohttp_client: AiohttpClient, database_url: str, db: asyncpg.Connection
) -> tuple[Client, str]:
    port = free_port()
    settings = Settings(database_url=database_url, metrics_listen=("127.0.0.1", port))
    client = await aiohttp_client(create_app(settings))
    return client, f"http://127.0.0.1:{port}/metrics"


async def test_metrics_listener_answers_without_a_token_and_only_metrics(
    listener: tuple[Client, str],
) -> None:
    client, url = listener
    assert (await client.get("/healthz")).status == 200
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 200
            text = await resp.text()
        async with session.get(url.replace("/metrics", "/healthz")) as resp:
            assert resp.status == 404
    assert Scrape(text).value("scim_http_requests_total", route="/healthz") == 1
    assert (await client.get("/metrics")).status == 404


async def test_metrics_listener_asks_for_the_token_when_one_is_set(
    aiohttp_client: AiohttpClient, database_url: str, db: asyncpg.Connection
) -> None:
    port = free_port()
    settings = Settings(
        database_url=database_url,
        metrics_listen=("127.0.0.1", port),
        metrics_token=METRICS_TOKEN,
    )
    await aiohttp_client(create_app(settings))
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 401
        async with session.get(url, headers=SCRAPE) as resp:
            assert resp.status == 200


# -- the per-org label -------------------------------------------------------------


async def test_org_label_is_opt_in_and_capped(
    aiohttp_client: AiohttpClient, database_url: str, db: asyncpg.Connection, base: str
) -> None:
    settings = Settings(
        database_url=database_url,
        public_base_url=PUBLIC_BASE_URL,
        metrics_token=METRICS_TOKEN,
        metrics_org_limit=1,
    )
    client = await aiohttp_client(create_app(settings))
    acme, globex = await make_org(db, "acme"), await make_org(db, "globex")
    await first_sync(client, base, acme.token, users=6, without_family=frozenset({2}))
    await first_sync(client, base, globex.token, users=4, without_family=frozenset())
    s = await scrape(client)
    events = s.by("scim_provisioning_events_total", "org", "event", "outcome")
    assert events[("acme", "Create user", "success")] == 5
    assert events[("acme", "Create user", "failure")] == 2
    # Past the cap, orgs share "other"; a request that proved no org has none.
    assert events[("other", "Create user", "success")] == 4
    assert events[("", "Authentication failed", "failure")] == 4
    logged = await log_counts(db)
    assert s.by("scim_provisioning_events_total", "event", "outcome") == logged
    # The 400, the 409 and the wrong base URL (its valid token names the org).
    assert s.value("scim_provisioning_failures_total", org="acme") == 3
    assert s.value("scim_http_requests_total", org="acme", status="201") >= 5
    # State: the org with the most users by name, the rest as "other".
    assert s.value("scim_users", state="active", org="acme") == 4
    assert s.value("scim_users", state="active", org="other") == 3
    assert s.value("scim_tokens_active", org="acme") == 1
    assert {labels["org"] for labels, _ in s.samples("scim_teams")} == {"acme", "other"}


# -- settings ---------------------------------------------------------------------


def test_metrics_settings_from_the_environment() -> None:
    default = Settings.from_env({})
    assert default.metrics_listen == ("127.0.0.1", 9464)
    assert default.metrics_token is None
    assert default.metrics_org_limit is None
    assert Settings.from_env({"METRICS_LISTEN": "off"}).metrics_listen is None
    assert Settings.from_env({"METRICS_LISTEN": "[::1]:9100"}).metrics_listen == ("::1", 9100)
    assert Settings.from_env({"METRICS_ORG_LABEL": "1"}).metrics_org_limit == 50
    labelled = Settings.from_env({"METRICS_ORG_LABEL": "1", "METRICS_ORG_LIMIT": "5"})
    assert labelled.metrics_org_limit == 5
    token = Settings.from_env({"METRICS_TOKEN": METRICS_TOKEN})
    assert token.metrics_token == METRICS_TOKEN
    assert METRICS_TOKEN not in repr(token)
    for bad in (
        {"METRICS_LISTEN": "9464"},
        {"METRICS_LISTEN": "localhost:port"},
        {"METRICS_TOKEN": "short"},
        {"METRICS_ORG_LABEL": "maybe"},
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)

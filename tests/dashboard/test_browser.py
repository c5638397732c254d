"""The dashboard in Debian's Chromium, driven by Playwright, against `serve` in a subprocess.

One browser and one server for the module; the tests run in file
order and share the server's data (setup first). Each page visited is saved as a
screenshot under var/screenshots/ (see the README).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from dashboard.security import hash_password
from gateway.store import admins as admin_store
from gateway.store import orgs as org_store
from gateway.store import tokens as token_store
from gateway.store.provisioning_log import LogRow, record_request
from tests.conftest import create_database, drop_database
from tests.payloads import OKTA_HEADERS, okta_create_user, okta_deactivate
from tests.served import free_port
from tests.test_cli import ROOT, clean_env

playwright_sync = pytest.importorskip("playwright.sync_api")
T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
SCREENSHOTS = ROOT / "var" / "screenshots"
PASSWORD = "correct horse battery"
XSS = "<script>alert(1)</script>"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
# The browser's timezone (see the page fixture).
BERLIN = ZoneInfo("Europe/Berlin")


def in_thread(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion in a thread of its own: Playwright's sync API keeps
    an event loop running in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One browser for all the browser tests (they live in this module). Module scope,
    not session: while Playwright's sync API runs, its event loop is the thread's
    running loop, which later async tests cannot share."""
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with playwright_sync.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class LiveServer:
    origin: str
    database_url: str
    setup_link: str
    log: Path

    @property
    def scim(self) -> str:
        return self.origin + "/api/sch/scim/v2"


def start_serve(database_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`serve` on a free port, its output in `log`; returns once /healthz answers."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--port", str(port)],
            cwd=ROOT,
            # Each serve its own data folder (metrics files, log spool); one database.
            env=clean_env(
                DATABASE_URL=database_url,
                GATEWAY_DATA_DIR=str(log.parent / f"data-{port}"),
                METRICS_LISTEN="off",
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    origin = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(origin + "/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return proc, origin
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    proc.wait(timeout=30)
    raise AssertionError(f"serve did not come up in 90 s: {log.read_text()}")


def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def live(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    database_url = in_thread(lambda: create_database(pg_server_url))
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    proc, origin = start_serve(database_url, log)
    try:
        match = re.search(r"(http://\S+/dashboard/setup\?code=\S+)", log.read_text())
        assert match, f"serve printed no setup link: {log.read_text()}"
        yield LiveServer(origin, database_url, match[1], log)
    finally:
        stop_serve(proc)
        in_thread(lambda: drop_database(pg_server_url, database_url))


@pytest.fixture(scope="module")
def second_worker(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another `serve` process on the same database, as a second worker or replica."""
    proc, origin = start_serve(live.database_url, tmp_path_factory.mktemp("serve2") / "serve.log")
    yield origin
    stop_serve(proc)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id=str(BERLIN)
    )
    opened = context.new_page()
    dialogs: list[str] = []

    def refuse(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    opened.on("dialog", refuse)
    yield opened
    context.close()
    assert not dialogs, f"a page opened a JavaScript dialog: {dialogs}"


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, live: LiveServer, email: str = "ada@acme.example") -> None:
    page.goto(live.origin + "/dashboard/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/settings/scim")


def scim(
    live: LiveServer, token: str, method: str, path: str, body: Any = None, *, origin: str = ""
) -> Any:
    request = urllib.request.Request(  # noqa: S310 (loopback URL built here)
        (origin + "/api/sch/scim/v2" if origin else live.scim) + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={**OKTA_HEADERS, "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        raw = response.read()
    return json.loads(raw) if raw else None


async def _token_for(database_url: str, slug: str) -> tuple[str, uuid.UUID]:
    conn = await asyncpg.connect(database_url)
    try:
        org = await org_store.get_org_by_slug(conn, slug)
        if org is None:
            org = await org_store.create_org(conn, slug)
        token, _ = await token_store.create_token(conn, org.id, note="browser test")
        return token, org.id
    finally:
        await conn.close()


def test_first_run_setup_then_sign_out_and_in(page: Any, live: LiveServer) -> None:
    page.goto(live.setup_link)
    shot(page, "01-setup")
    page.get_by_label("Organisation name").fill("Acme Corp")
    page.get_by_label("Short name").fill("acme")
    page.get_by_label("Your email").fill("ada@acme.example")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create org and admin").click()
    page.wait_for_url("**/dashboard/settings/scim")
    assert page.get_by_role("heading", name="Settings → SCIM").is_visible()
    assert page.get_by_text("No requests from Okta yet").first.is_visible()
    shot(page, "02-settings-scim-empty")
    # The link works once.
    assert page.goto(live.setup_link).status == 404

    page.goto(live.origin + "/dashboard/settings/scim")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/dashboard/signin?signed_out=1")
    assert page.goto(live.origin + "/dashboard/users").url.startswith(
        live.origin + "/dashboard/signin?next="
    )
    page.get_by_label("Email").fill("ada@acme.example")
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "The email or password is incorrect."
    shot(page, "03-signin-wrong-password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/users")


def test_generate_token_once_and_revoke(page: Any, live: LiveServer) -> None:
    sign_in(page, live)
    page.get_by_label("Note").fill("Okta production")
    page.get_by_role("button", name="Generate Token").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    token = page.locator("#new-token").inner_text()
    assert token.startswith("schscim_")
    assert dialog.get_by_text("it will not be shown again").is_visible()
    shot(page, "04-token-dialog")
    # The token works against SCIM.
    assert scim(live, token, "GET", "/Users?startIndex=1&count=2")["totalResults"] == 0
    # Closing the dialog replaces the page (app.js): wait for that navigation, or the
    # reload below races it and one of the two is aborted.
    with page.expect_navigation():
        dialog.get_by_role("button", name="I have copied it").click()
    page.reload()
    assert token not in page.content()
    page.go_back()
    assert token not in page.content()
    page.goto(live.origin + "/dashboard/settings/scim")
    row = page.locator("#tokens tr", has_text="Okta production")
    assert "Okta SCIM Client 1.0.0" in row.inner_text()
    shot(page, "05-settings-scim-tokens")
    row.get_by_role("link", name="Revoke").click()
    page.wait_for_url("**/revoke")
    shot(page, "06-revoke-confirm")
    page.get_by_role("button", name="Revoke token").click()
    page.wait_for_url("**/dashboard/settings/scim?revoked=*")
    assert page.get_by_role("status").inner_text().startswith("Revoked schscim_…" + token[-4:])
    with pytest.raises(urllib.error.HTTPError) as refused:
        scim(live, token, "GET", "/Users")
    assert refused.value.code == 401
    refused.value.close()


def test_users_and_teams_from_okta_traffic(page: Any, live: LiveServer) -> None:
    token, _ = in_thread(lambda: _token_for(live.database_url, "acme"))
    jane = scim(live, token, "POST", "/Users", okta_create_user("jane@acme.example"))["id"]
    bob = scim(
        live,
        token,
        "POST",
        "/Users",
        okta_create_user("bob@acme.example", given="Bob", family="Stone", external_id="00ubob"),
    )["id"]
    evil = scim(
        live,
        token,
        "POST",
        "/Users",
        okta_create_user("evil@acme.example", given=XSS, family="X", external_id="00uevil"),
    )["id"]
    team = scim(
        live,
        token,
        "POST",
        "/Groups",
        {
            "schemas": [GROUP],
            "displayName": "Engineering",
            "members": [{"value": jane, "display": "jane@acme.example"}, {"value": bob}],
        },
    )["id"]
    scim(live, token, "PATCH", f"/Users/{bob}", okta_deactivate())

    sign_in(page, live)
    page.get_by_role("link", name="Users").click()
    rows = page.locator("table.grid tbody tr")
    assert rows.count() == 3
    bob_row = page.locator("tr", has_text="bob@acme.example")
    assert "Deactivated" in bob_row.inner_text()
    assert "Engineering" in bob_row.inner_text()
    # What Okta sent is text, never markup (the page fixture fails on any dialog).
    assert page.get_by_text(f"{XSS} X").is_visible()
    shot(page, "07-users")
    page.get_by_label("Search").fill("JA")
    page.get_by_role("button", name="Search").click()
    assert page.locator("table.grid tbody tr").count() == 1
    page.get_by_role("link", name="jane@acme.example").click()
    assert page.get_by_role("heading", name="Jane Doe").is_visible()
    assert page.get_by_text("Create user").first.is_visible()
    shot(page, "08-user")
    page.goto(f"{live.origin}/dashboard/users/{bob}")
    assert page.get_by_text("Deactivate user").first.is_visible()
    page.goto(f"{live.origin}/dashboard/users/{evil}")
    assert page.get_by_role("heading").filter(has_text=XSS).is_visible()
    page.get_by_role("link", name="Teams").click()
    shot(page, "09-teams")
    page.get_by_role("link", name="Engineering").click()
    page.wait_for_url(f"**/dashboard/teams/{team}")
    assert page.get_by_text("2 members").is_visible()
    assert page.get_by_role("link", name="bob@acme.example").is_visible()
    shot(page, "10-team")


def test_other_orgs_ids_are_404_and_csrf_is_refused(page: Any, live: LiveServer) -> None:
    other_token, _ = in_thread(lambda: _token_for(live.database_url, "globex"))
    spy = scim(live, other_token, "POST", "/Users", okta_create_user("spy@globex.example"))["id"]
    sign_in(page, live)
    response = page.goto(f"{live.origin}/dashboard/users/{spy}")
    assert response.status == 404
    assert page.get_by_role("heading", name="Not found").is_visible()
    shot(page, "11-not-found")

    page.goto(live.origin + "/dashboard/settings/scim")
    page.locator("#generate-form input[name=csrf_token]").evaluate("e => e.value = 'forged'")
    with page.expect_navigation():
        page.locator("#generate-form").evaluate("f => f.submit()")
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    assert page.get_by_text("did not come from this dashboard").is_visible()
    shot(page, "12-csrf-refused")


def test_live_logs_and_first_sync_from_a_second_worker(
    page: Any, live: LiveServer, second_worker: str
) -> None:
    token, _ = in_thread(lambda: _token_for(live.database_url, "acme"))
    # Okta's Test API Credentials starts this token's sync job.
    scim(live, token, "GET", "/Users?startIndex=1&count=2", origin=second_worker)
    sign_in(page, live)
    sync = page.context.new_page()
    sync.goto(live.origin + "/dashboard/first-sync")
    latest = sync.locator("section.job").last
    created = latest.locator('[data-count="Create user|success"]')
    before = int(created.inner_text())
    page.goto(live.origin + "/dashboard/logs")
    page.locator("#live-status", has_text="Live").wait_for()

    # Served by the other process: every process's poller reads the same database.
    scim(
        live,
        token,
        "POST",
        "/Users",
        okta_create_user("live@acme.example", external_id="00ulive"),
        origin=second_worker,
    )
    answered = time.monotonic()
    row = page.locator("tbody.entry", has_text="live@acme.example")
    row.wait_for(timeout=2000)
    seconds = time.monotonic() - answered
    print(f"new log row on screen {seconds:.2f} s after the SCIM response")
    assert seconds <= 2
    assert "Create user" in row.inner_text()
    # First sync counts too, without a reload.
    sync.wait_for_function(
        "([el, n]) => Number(el.textContent) === n", arg=[created.element_handle(), before + 1]
    )
    shot(sync, "15-first-sync")

    # A failure row opens to its guidance.
    nameless = okta_create_user("noname@acme.example", external_id="00unoname")
    del nameless["name"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        scim(live, token, "POST", "/Users", nameless, origin=second_worker)
    refused.value.close()
    failure = page.locator("tbody.entry.outcome-failure", has_text="noname@acme.example")
    failure.wait_for(timeout=2000)
    assert "Failure" in failure.inner_text()
    failure.get_by_role("button", name="Details").click()
    assert failure.get_by_text("What Okta does next").is_visible()
    assert failure.get_by_text("Okta does not retry this by itself").is_visible()
    shot(page, "14-logs-live-failure-detail")
    # Okta's Retry Selected, once the mapping is fixed, resolves it on screen.
    assert "Unresolved" in failure.inner_text()
    scim(
        live,
        token,
        "POST",
        "/Users",
        okta_create_user("noname@acme.example", external_id="00unoname"),
        origin=second_worker,
    )
    failure.locator(".resolution", has_text="Resolved by a later success").wait_for(timeout=3000)

    # Paused: rows wait; resumed: they appear.
    page.get_by_role("button", name="Pause").click()
    scim(
        live,
        token,
        "GET",
        "/Users?filter=userName%20eq%20%22held%40acme.example%22",
        origin=second_worker,
    )
    page.locator("#live-status", has_text="Paused (1 new)").wait_for(timeout=3000)
    assert page.locator("tbody.entry", has_text="held@acme.example").count() == 0
    page.get_by_role("button", name="Resume").click()
    page.locator("tbody.entry", has_text="held@acme.example").wait_for(timeout=2000)
    sync.close()


async def _past_rows(database_url: str, slug: str, rows: list[tuple[str, datetime, str]]) -> None:
    """Log rows of Okta's creates (name, when, outcome) as if they arrived back then."""
    conn = await asyncpg.connect(database_url)
    try:
        org = await org_store.get_org_by_slug(conn, slug)
        assert org is not None
        for name, when, outcome in rows:
            failed = outcome == "failure"
            await record_request(
                conn,
                LogRow(
                    occurred_at=when, request_id=uuid.uuid4().hex, method="POST", path="/Users",
                    query="", status=400 if failed else 201, duration_ms=3.0, org_id=org.id,
                    event="Create user", outcome=outcome, target_type="User", target_name=name,
                    target_key=f"user:{name}", code="missing_attribute" if failed else None,
                ),
            )  # fmt: skip
    finally:
        await conn.close()


def test_logs_custom_time_range_in_the_viewers_timezone(page: Any, live: LiveServer) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    in_thread(
        lambda: _past_rows(
            live.database_url,
            "acme",
            [
                ("range-in@acme.example", now - timedelta(hours=3), "success"),
                ("range-out@acme.example", now - timedelta(hours=30), "success"),
            ],
        )
    )
    sign_in(page, live)
    page.goto(live.origin + "/dashboard/logs")
    start, end = now - timedelta(hours=5), now - timedelta(hours=1)
    # The page's timezone (Europe/Berlin): what an admin there types.
    page.get_by_label("From", exact=True).fill(start.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("To", exact=True).fill(end.astimezone(BERLIN).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/dashboard/logs?*from=*")
    query = parse_qs(urlsplit(page.url).query)
    # Sent as UTC instants: the link means the same rows in any timezone.
    assert query["from"] == [start.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert query["to"] == [end.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert "since" not in query
    page.locator("tbody.entry", has_text="range-in@acme.example").wait_for()
    assert page.locator("tbody.entry", has_text="range-out@acme.example").count() == 0
    assert page.locator("tbody.entry", has_text="live@acme.example").count() == 0
    # A range that has ended has no live stream.
    assert page.locator("#live-status").count() == 0
    # Reloaded from the URL, the inputs show the viewer's local time again.
    page.reload()
    assert page.get_by_label("From", exact=True).input_value() == start.astimezone(BERLIN).strftime(
        "%Y-%m-%dT%H:%M"
    )
    shot(page, "16-logs-custom-range")
    # A preset replaces the custom range.
    page.get_by_label("Time", exact=True).select_option("24h")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/dashboard/logs?*since=24h*")
    assert "from" not in parse_qs(urlsplit(page.url).query)
    page.locator("tbody.entry", has_text="range-in@acme.example").wait_for()
    assert page.locator("tbody.entry", has_text="range-out@acme.example").count() == 0


async def _org_admin(database_url: str, slug: str, email: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        org = await org_store.get_org_by_slug(conn, slug)
        assert org is not None
        await admin_store.create_admin(conn, org.id, email, await hash_password(PASSWORD))
    finally:
        await conn.close()


def _bar_counts(page: Any) -> dict[str, dict[str, int]]:
    """The chart's bars: start → counts by outcome (only bars with requests)."""
    bars = page.locator("svg.hourly g.bar").evaluate_all(
        """gs => gs.map(g => [g.dataset.start, {success: +(g.dataset.success || 0),
            warning: +(g.dataset.warning || 0), failure: +(g.dataset.failure || 0)}])"""
    )
    return {start: counts for start, counts in bars if any(counts.values())}


def test_hourly_chart_counts_the_traffic_sent(page: Any, live: LiveServer) -> None:
    token, _ = in_thread(lambda: _token_for(live.database_url, "initech"))
    in_thread(lambda: _org_admin(live.database_url, "initech", "ops@initech.example"))
    now = datetime.now(UTC)
    earlier = (now - timedelta(hours=3)).replace(minute=10, second=0, microsecond=0)
    in_thread(
        lambda: _past_rows(
            live.database_url,
            "initech",
            [
                ("early1@initech.example", earlier, "success"),
                ("early2@initech.example", earlier + timedelta(minutes=5), "success"),
                ("early3@initech.example", earlier + timedelta(minutes=9), "failure"),
            ],
        )
    )
    for name in ("ann", "ben", "cy"):
        scim(live, token, "POST", "/Users", okta_create_user(f"{name}@initech.example"))
    scim(live, token, "GET", "/Users?filter=userName%20eq%20%22dee%40initech.example%22")
    nameless = okta_create_user("dee@initech.example")
    del nameless["name"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        scim(live, token, "POST", "/Users", nameless)
    refused.value.close()

    sign_in(page, live, "ops@initech.example")
    page.goto(live.origin + "/dashboard/logs")
    chart = page.locator("section.chart")
    assert chart.get_by_role("heading", name="Requests per hour").is_visible()
    # Requests sent now (4 successes, 1 failure) and three hours ago (2 and 1).
    bars = _bar_counts(page)
    early_hour = earlier.replace(minute=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert bars.pop(early_hour) == {"success": 2, "warning": 0, "failure": 1}
    assert sum(c["success"] for c in bars.values()) == 4
    assert sum(c["failure"] for c in bars.values()) == 1
    assert chart.locator("[data-chart-total]").inner_text() == "8"
    # Each bar's title has its numbers, its hour in the viewer's timezone.
    title = chart.locator(f'g.bar[data-start="{early_hour}"] > title').text_content()
    local = earlier.replace(minute=0).astimezone(BERLIN).strftime("%H:%M")
    assert local in title
    assert title.endswith("3 requests: 2 success, 0 warning, 1 failure")
    # The table fallback holds the same numbers.
    chart.get_by_text("The counts as a table").click()
    table = chart.get_by_role("table", name="Requests per hour by outcome")
    totals = [int(t) for t in table.locator("tbody td:last-child").all_inner_texts()]
    assert sum(totals) == 8
    assert 3 in totals
    shot(page, "17-logs-hourly-chart")

    # The chart follows the selected range.
    start, end = now - timedelta(hours=5), now - timedelta(hours=1)
    page.goto(
        live.origin
        + "/dashboard/logs?from="
        + start.strftime("%Y-%m-%dT%H:%M:%SZ")
        + "&to="
        + end.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    assert _bar_counts(page) == {early_hour: {"success": 2, "warning": 0, "failure": 1}}
    assert chart.locator("[data-chart-total]").inner_text() == "3"


def test_sign_in_is_throttled(page: Any, live: LiveServer) -> None:
    page.goto(live.origin + "/dashboard/signin")
    for _ in range(5):
        page.get_by_label("Email").fill("ada@acme.example")
        page.get_by_label("Password").fill("not the password")
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert "Too many failed sign-ins" in page.get_by_role("alert").inner_text()
    shot(page, "13-signin-throttled")

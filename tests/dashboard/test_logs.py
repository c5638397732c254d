"""Logs, the live stream and First sync, on Okta-shaped traffic through the real app."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
from aiohttp import ClientResponse
from aiohttp.test_utils import make_mocked_request

from dashboard.logs import LogView
from gateway.appkeys import LIVE_LOG
from gateway.store.provisioning_log import LogRow
from tests.conftest import OrgWithToken
from tests.dashboard.conftest import Client, SignedIn
from tests.payloads import OKTA_HEADERS, dumps, okta_create_user
from tests.store.test_provisioning_log import JANE, JOHN, add

SCIM = "/api/sch/scim/v2"


async def okta(client: Client, org: OrgWithToken, method: str, path: str, body: Any = None) -> int:
    response = await client.request(
        method,
        SCIM + path,
        data=None if body is None else dumps(body),
        headers={**OKTA_HEADERS, **org.headers},
    )
    await response.read()
    return response.status


async def next_row(stream: ClientResponse) -> dict[str, Any]:
    """The next `row` event of a server-sent event stream."""
    event = ""
    while True:
        line = (await asyncio.wait_for(stream.content.readline(), 10)).decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "row":
            return dict(json.loads(line[6:]))


async def test_logs_empty_then_rows_with_guidance(admin: SignedIn, acme: OrgWithToken) -> None:
    client = admin.client
    empty = await (await client.get("/dashboard/logs")).text()
    assert "No requests from Okta yet" in empty

    assert await okta(client, acme, "POST", "/Users", okta_create_user("jane@acme.example")) == 201
    nameless = okta_create_user("<script>alert(1)</script>@acme.example")
    del nameless["name"]
    assert await okta(client, acme, "POST", "/Users", nameless) == 400

    html = await (await client.get("/dashboard/logs")).text()
    assert "Create user" in html
    assert "jane@acme.example" in html
    assert '<span class="badge badge-failure">✕ Failure</span>' in html
    assert "What happened" in html
    assert "What Okta does next" in html
    assert "What to do" in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    failures = await (await client.get("/dashboard/logs?outcome=failure")).text()
    # Rows' outcome badges (the chart's legend names every outcome).
    assert '<span class="badge badge-success">✓ Success</span>' not in failures
    assert '<span class="badge badge-failure">✕ Failure</span>' in failures
    none = await (await client.get("/dashboard/logs?event=Delete+group")).text()
    assert "No requests match these filters." in none
    assert (await client.get("/dashboard/logs?job=nope")).status == 404
    assert (await client.get("/dashboard/logs?before=garbage")).status == 400


async def test_another_orgs_rows_are_not_shown(
    admin: SignedIn, acme: OrgWithToken, globex: OrgWithToken
) -> None:
    await okta(admin.client, globex, "POST", "/Users", okta_create_user("spy@globex.example"))
    html = await (await admin.client.get("/dashboard/logs")).text()
    assert "spy@globex.example" not in html
    assert "No requests from Okta yet" in html


async def test_live_rows_reach_every_open_page_from_one_poller(
    admin: SignedIn, acme: OrgWithToken, globex: OrgWithToken
) -> None:
    client = admin.client
    live = client.app[LIVE_LOG]
    first = await client.get("/dashboard/logs/live", headers={"Accept": "text/event-stream"})
    second = await client.get(
        "/dashboard/logs/live?outcome=success", headers={"Accept": "text/event-stream"}
    )
    assert first.headers["Content-Type"] == "text/event-stream"
    assert first.headers["Cache-Control"] == "no-store"
    for _ in range(50):
        if live.subscriber_count == 2:
            break
        await asyncio.sleep(0.05)
    assert live.subscriber_count == 2
    # Another org's traffic never reaches this org's pages.
    await okta(client, globex, "POST", "/Users", okta_create_user("spy@globex.example"))
    await okta(client, acme, "POST", "/Users", okta_create_user("jane@acme.example"))
    a, b = await next_row(first), await next_row(second)
    assert a["id"] == b["id"]
    assert a["event"] == "Create user"
    assert "jane@acme.example" in a["html"]
    first.close()
    second.close()


async def test_first_sync_counts(admin: SignedIn, acme: OrgWithToken) -> None:
    client = admin.client
    assert "No sync yet" in await (await client.get("/dashboard/first-sync")).text()
    await okta(client, acme, "GET", "/Users?startIndex=1&count=2")
    await okta(client, acme, "POST", "/Users", okta_create_user("jane@acme.example"))
    html = await (await client.get("/dashboard/first-sync")).text()
    assert "First sync" in html
    assert "● Running" in html
    assert 'data-count="Create user|success">1<' in html
    assert 'data-count="requests">2<' in html


async def test_row_page_retry_resolution_and_other_orgs_ids(
    admin: SignedIn, acme: OrgWithToken, globex: OrgWithToken, db: asyncpg.Connection
) -> None:
    client = admin.client
    nameless = okta_create_user("ann@acme.example")
    del nameless["name"]
    assert await okta(client, acme, "POST", "/Users", nameless) == 400
    row_id = await db.fetchval(
        "SELECT max(id) FROM provisioning_log WHERE org_id = $1", acme.org.id
    )
    page = await (await client.get(f"/dashboard/logs/{row_id}")).text()
    assert "Unresolved" in page
    assert "What to do" in page
    unresolved = await (await client.get("/dashboard/logs?unresolved=1&q=ann@acme.example")).text()
    assert f'id="row-{row_id}"' in unresolved

    # Okta's Retry Selected after the mapping is fixed: the failure is resolved.
    assert await okta(client, acme, "POST", "/Users", okta_create_user("ann@acme.example")) == 201
    page = await (await client.get(f"/dashboard/logs/{row_id}")).text()
    assert "Resolved by a later success" in page
    assert (
        f'id="row-{row_id}"' not in await (await client.get("/dashboard/logs?unresolved=1")).text()
    )

    await okta(client, globex, "GET", "/Users?startIndex=1&count=2")
    other_row = await db.fetchval(
        "SELECT max(id) FROM provisioning_log WHERE org_id = $1", globex.org.id
    )
    other_job = await db.fetchval("SELECT job_id FROM provisioning_log WHERE id = $1", other_row)
    assert (await client.get(f"/dashboard/logs/{other_row}")).status == 404
    other_jobs = await (await client.get(f"/dashboard/logs?job={other_job}")).text()
    assert "No requests match these filters." in other_jobs


def _utc(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_custom_time_range_in_the_url(
    admin: SignedIn, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    client = admin.client
    now = datetime.now(UTC).replace(microsecond=0)
    await add(db, acme, occurred_at=now - timedelta(hours=3), event="Create user", target=JANE)
    await add(db, acme, occurred_at=now - timedelta(hours=30), event="Create user", target=JOHN)
    assert await okta(client, acme, "POST", "/Users", okta_create_user("now@acme.example")) == 201

    async def shown(query: str) -> set[str]:
        response = await client.get("/dashboard/logs?" + query)
        assert response.status == 200, await response.text()
        html = await response.text()
        return {
            n for n in ("Jane@Example.com", "john@example.com", "now@acme.example") if n in html
        }

    window = {"from": _utc(now - timedelta(hours=5)), "to": _utc(now - timedelta(hours=1))}
    assert await shown(urlencode(window)) == {"Jane@Example.com"}
    # The hourly chart counts the same range (by whole hours) and, without one, the last day.
    ranged = await (await client.get("/dashboard/logs?" + urlencode(window))).text()
    assert "<span data-chart-total>1</span>" in ranged
    day = await (await client.get("/dashboard/logs")).text()
    assert "<span data-chart-total>2</span>" in day
    assert await shown(urlencode({"from": window["from"]})) == {
        "Jane@Example.com",
        "now@acme.example",
    }
    assert await shown(urlencode({"to": window["to"]})) == {"Jane@Example.com", "john@example.com"}
    # With a preset too, both hold.
    day_ago = _utc(now - timedelta(hours=48))
    assert await shown(urlencode({"since": "24h", "from": day_ago})) == {
        "Jane@Example.com",
        "now@acme.example",
    }
    # An instant with an offset is the same instant; the page keeps it in UTC (the
    # hidden fields the browser's local inputs are filled from) and in its links.
    berlin = (now - timedelta(hours=5)).astimezone(timezone(timedelta(hours=2)))
    html = await (
        await client.get(
            "/dashboard/logs?" + urlencode({"from": berlin.isoformat(), "outcome": "success"})
        )
    ).text()
    assert f'name="from" value="{window["from"]}"' in html
    # A range that has ended gets no live stream; an open one does.
    assert (
        'id="live-status"'
        not in await (await client.get("/dashboard/logs?" + urlencode(window))).text()
    )
    assert 'id="live-status"' in html
    assert "from=" + quote(window["from"]) in html

    for bad in (
        {"from": "yesterday"},
        {"to": "2024-13-40T10:00"},
        {"from": "0001-01-01T00:00+05:00"},
    ):
        response = await client.get("/dashboard/logs?" + urlencode(bad))
        assert response.status == 400
        assert "not a date and time" in await response.text()
    backwards = await client.get(
        "/dashboard/logs?" + urlencode({"from": window["to"], "to": window["from"]})
    )
    assert backwards.status == 400
    assert "ends before it starts" in await backwards.text()


def test_live_rows_outside_the_range_are_not_sent() -> None:
    now = datetime.now(UTC)

    def view(**query: str) -> LogView:
        return LogView.from_query(make_mocked_request("GET", "/dashboard/logs?" + urlencode(query)))

    row = LogRow(
        occurred_at=now, request_id="r", method="GET", path="/Users", query="", status=200,
        duration_ms=1.0,
    )  # fmt: skip
    assert view().matches(row)
    assert view(since="1h", to=_utc(now + timedelta(hours=1))).matches(row)
    assert not view(to=_utc(now - timedelta(minutes=1))).matches(row)
    assert not view(**{"from": _utc(now + timedelta(minutes=1))}).matches(row)

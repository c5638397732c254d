"""`/` on the root app: a browser goes to the dashboard; a SCIM client is told its URL is wrong."""

from __future__ import annotations

import asyncpg

from tests.conftest import OrgWithToken
from tests.dashboard.conftest import Client


async def test_root_redirects_a_browser_to_the_dashboard(dash: Client) -> None:
    response = await dash.get("/", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] == "/dashboard/"
    # Followed: the dashboard asks for a sign-in.
    followed = await dash.get("/")
    assert followed.status == 200
    assert followed.url.path == "/dashboard/signin"


async def test_root_with_a_token_is_a_scim_404_with_its_log_row(
    dash: Client, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    response = await dash.get("/", headers=acme.headers, allow_redirects=False)
    assert response.status == 404
    assert response.content_type == "application/scim+json"
    body = await response.json(content_type=None)
    assert "/api/sch/scim/v2" in body["detail"]
    row = await db.fetchrow("SELECT org_id, event, status FROM provisioning_log")
    assert row is not None
    assert dict(row) == {"org_id": acme.org.id, "event": "Wrong base URL", "status": 404}


async def test_root_other_methods_are_served_as_scim(
    dash: Client, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    # As on any path outside the dashboard: SCIM's answer, and a log row each.
    anonymous = await dash.post("/", data="{}", allow_redirects=False)
    assert anonymous.status == 401
    assert anonymous.content_type == "application/scim+json"
    with_token = await dash.post("/", data="{}", headers=acme.headers, allow_redirects=False)
    assert with_token.status == 404
    assert await db.fetchval("SELECT count(*) FROM provisioning_log") == 2

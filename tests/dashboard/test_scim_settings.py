"""Settings → SCIM: base URL, tokens shown once, revoke within the org, the checklist."""

from __future__ import annotations

import re

import asyncpg

from tests.conftest import OrgWithToken, revoke_settled
from tests.dashboard.conftest import SignedIn
from tests.payloads import OKTA_HEADERS

SCIM = "/api/sch/scim/v2"


async def test_base_url_and_empty_states(admin: SignedIn) -> None:
    html = await (await admin.client.get("/dashboard/settings/scim")).text()
    assert "http://127.0.0.1:8080/api/sch/scim/v2" in html
    assert "Unique identifier field" in html
    assert "<code>email</code>" in html
    assert "No requests from Okta yet" in html


async def test_generated_token_is_shown_once(admin: SignedIn, db: asyncpg.Connection) -> None:
    client = admin.client
    response = await client.post(
        "/dashboard/settings/scim/tokens",
        data={"note": "Okta prod", "expires_days": "90", "csrf_token": admin.csrf},
        headers={"Accept": "application/json"},
    )
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    created = await response.json()
    token = created["token"]
    assert token.startswith("schscim_")
    assert created["display"] == "schscim_…" + token[-4:]
    # It works on SCIM, and the list shows its last use by Okta.
    scim = await client.get(
        f"{SCIM}/Users?startIndex=1&count=2",
        headers={**OKTA_HEADERS, "Authorization": f"Bearer {token}"},
    )
    assert scim.status == 200
    page = await client.get("/dashboard/settings/scim")
    html = await page.text()
    assert token not in html
    assert "schscim_…" + token[-4:] in html
    assert "Okta prod" in html
    assert "Okta SCIM Client 1.0.0" in html
    assert await db.fetchval("SELECT count(*) FROM scim_tokens WHERE note = 'Okta prod'") == 1


async def test_generated_token_without_script_is_in_the_page_once(admin: SignedIn) -> None:
    response = await admin.client.post(
        "/dashboard/settings/scim/tokens", data={"csrf_token": admin.csrf}
    )
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = await response.text()
    token = re.search(r'id="new-token" class="token">(schscim_\w+)<', html)
    assert token is not None
    assert "it will not be shown again" in html
    again = await (await admin.client.get("/dashboard/settings/scim")).text()
    assert token[1] not in again


async def test_revoke_with_confirmation(admin: SignedIn, acme: OrgWithToken) -> None:
    client = admin.client
    confirm = await client.get(f"/dashboard/settings/scim/tokens/{acme.token_id}/revoke")
    assert confirm.status == 200
    assert "Revoke schscim_…" + acme.token[-4:] in await confirm.text()
    # Confirming is a GET page; only the POST revokes.
    assert (await client.get(f"{SCIM}/Users", headers=acme.headers)).status == 200
    done = await client.post(
        f"/dashboard/settings/scim/tokens/{acme.token_id}/revoke",
        data={"csrf_token": admin.csrf},
        allow_redirects=False,
    )
    assert done.status == 303
    page = await client.get(done.headers["Location"])
    assert "Revoked schscim_…" + acme.token[-4:] in await page.text()
    await revoke_settled()
    assert (await client.get(f"{SCIM}/Users", headers=acme.headers)).status == 401


async def test_another_orgs_token_is_not_found(admin: SignedIn, globex: OrgWithToken) -> None:
    client = admin.client
    for path in (
        f"/dashboard/settings/scim/tokens/{globex.token_id}/revoke",
        "/dashboard/settings/scim/tokens/not-a-uuid/revoke",
    ):
        assert (await client.get(path)).status == 404
        post = await client.post(path, data={"csrf_token": admin.csrf})
        assert post.status == 404
    assert (await client.get(f"{SCIM}/Users", headers=globex.headers)).status == 200
    html = await (await client.get("/dashboard/settings/scim")).text()
    assert globex.token[-4:] not in html or "schscim_…" + globex.token[-4:] not in html


async def test_checklist_reads_real_traffic(
    admin: SignedIn, acme: OrgWithToken, db: asyncpg.Connection
) -> None:
    client = admin.client
    await client.get(f"{SCIM}/Users?startIndex=1&count=2", headers={**OKTA_HEADERS, **acme.headers})
    html = await (await client.get("/dashboard/settings/scim")).text()
    assert "The last requests arrived on http://127.0.0.1:8080/api/sch/scim/v2" in html
    assert "succeeded, from Okta SCIM Client 1.0.0" in html

    # Okta's next requests: a URL with a trailing slash, then a truncated token.
    await client.get(
        f"{SCIM}//Users?startIndex=1&count=2", headers={**OKTA_HEADERS, **acme.headers}
    )
    html = await (await client.get("/dashboard/settings/scim")).text()
    assert "The last request went to a wrong URL" in html
    # A revoked token still pasted in Okta (a truncated one names no org, so it cannot be
    # filed under this one).
    await db.execute("UPDATE scim_tokens SET revoked_at = now() WHERE id = $1", acme.token_id)
    await revoke_settled()
    await client.get(f"{SCIM}/Users", headers={**OKTA_HEADERS, **acme.headers})
    html = await (await client.get("/dashboard/settings/scim")).text()
    assert "Okta&#39;s last requests were refused (401): the token was revoked." in html
    assert "Generate a new token" in html

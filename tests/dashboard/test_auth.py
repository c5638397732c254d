"""Sign-in, sessions, throttling, CSRF and security headers, on the real app and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import asyncpg
from pytest_aiohttp import AiohttpClient

from dashboard.security import digest
from gateway.app import create_app
from gateway.settings import Settings
from gateway.store import admins as admin_store
from tests.conftest import OrgWithToken
from tests.dashboard.conftest import PASSWORD, Client, SignedIn, add_admin, csrf_of, sign_in

SESSION = "scimgw_session"


async def test_pages_need_a_session(dash: Client) -> None:
    response = await dash.get("/dashboard/users?q=a", allow_redirects=False)
    assert response.status == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/dashboard/signin"
    assert parse_qs(location.query) == {"next": ["/dashboard/users?q=a"]}
    api = await dash.post("/dashboard/settings/scim/tokens", headers={"Accept": "application/json"})
    assert api.status in (401, 403)


async def test_sign_in_and_out(dash: Client, db: asyncpg.Connection, acme: OrgWithToken) -> None:
    await add_admin(db, acme, "Ada@Acme.example")
    response = await sign_in(dash, "ada@acme.example")
    assert response.status == 303
    assert response.headers["Location"] == "/dashboard/settings/scim"
    first = response.cookies[SESSION].value
    set_cookie = response.headers.getall("Set-Cookie")
    session_cookie = next(c for c in set_cookie if c.startswith(SESSION + "="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=Lax" in session_cookie
    assert "Path=/" in session_cookie

    page = await dash.get("/dashboard/settings/scim")
    assert page.status == 200
    html = await page.text()
    assert "Ada@Acme.example" in html
    assert "acme" in html

    # Signing in again makes a new session id; the old one no longer opens anything.
    again = await sign_in(dash, "ada@acme.example")
    assert again.status == 303
    second = again.cookies[SESSION].value
    assert second != first
    assert (
        await admin_store.resume_session(
            db, digest(first), idle_seconds=1800, absolute_seconds=43200
        )
        is None
    )

    signout = await dash.post(
        "/dashboard/signout",
        data={"csrf_token": csrf_of(await (await dash.get("/dashboard/users")).text())},
        allow_redirects=False,
    )
    assert signout.status == 303
    assert await db.fetchval("SELECT count(*) FROM dashboard_sessions") == 0
    dash.session.cookie_jar.update_cookies({SESSION: second})
    after = await dash.get("/dashboard/settings/scim", allow_redirects=False)
    assert after.status == 303
    assert after.headers["Location"].startswith("/dashboard/signin")


async def test_sign_out_is_never_a_get(admin: SignedIn) -> None:
    response = await admin.client.get("/dashboard/signout", allow_redirects=False)
    assert response.status == 405
    assert (await admin.client.get("/dashboard/settings/scim")).status == 200


async def test_unknown_email_and_wrong_password_get_the_same_answer(
    dash: Client, db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    await add_admin(db, acme, "ada@acme.example")
    wrong = await sign_in(dash, "ada@acme.example", "not the password")
    unknown = await sign_in(dash, "nobody@acme.example", "not the password")
    assert wrong.status == unknown.status == 401
    wrong_html, unknown_html = await wrong.text(), await unknown.text()
    assert "The email or password is incorrect." in wrong_html
    assert wrong_html.replace("ada@", "X@") == unknown_html.replace("nobody@", "X@")


async def test_a_disabled_admin_cannot_sign_in_and_loses_sessions(
    admin: SignedIn, db: asyncpg.Connection
) -> None:
    assert await admin_store.disable_admin(db, "ADMIN@acme.example") is not None
    response = await admin.client.get("/dashboard/settings/scim", allow_redirects=False)
    assert response.status == 303
    assert (await sign_in(admin.client, "admin@acme.example")).status == 401


async def test_sign_in_is_throttled_per_account(
    dash: Client, db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    await add_admin(db, acme, "ada@acme.example")
    for _ in range(5):
        assert (await sign_in(dash, "ada@acme.example", "guess guess guess")).status == 401
    # Now even the right password is refused, with the same answer as for an unknown email.
    right = await sign_in(dash, "ada@acme.example", PASSWORD)
    assert right.status == 429
    assert "Too many failed sign-ins" in await right.text()
    assert right.headers["Retry-After"] == "900"
    for _ in range(5):
        await sign_in(dash, "ghost@acme.example", "guess guess guess")
    assert (await sign_in(dash, "ghost@acme.example", "guess")).status == 429
    # The window passes: the account signs in again, and its failures are forgotten.
    await db.execute(
        "UPDATE dashboard_signin_failures SET failed_at = failed_at - interval '16 minutes'"
    )
    assert (await sign_in(dash, "ada@acme.example", PASSWORD)).status == 303


async def test_sign_in_is_throttled_per_address(
    aiohttp_client: AiohttpClient,
    dashboard_settings: Settings,
    db: asyncpg.Connection,
    acme: OrgWithToken,
) -> None:
    client = await aiohttp_client(create_app(replace(dashboard_settings, signin_max_per_ip=3)))
    await add_admin(db, acme, "ada@acme.example")
    for n in range(3):
        assert (await sign_in(client, f"guess{n}@acme.example", "guess guess")).status == 401
    assert (await sign_in(client, "ada@acme.example", PASSWORD)).status == 429


async def test_idle_and_absolute_timeouts(admin: SignedIn, db: asyncpg.Connection) -> None:
    await db.execute("UPDATE dashboard_sessions SET last_seen_at = now() - interval '31 minutes'")
    idle = await admin.client.get("/dashboard/settings/scim", allow_redirects=False)
    assert idle.status == 303

    await sign_in(admin.client, "admin@acme.example")
    assert (await admin.client.get("/dashboard/settings/scim")).status == 200
    await db.execute("UPDATE dashboard_sessions SET created_at = now() - interval '13 hours'")
    old = await admin.client.get("/dashboard/settings/scim", allow_redirects=False)
    assert old.status == 303


async def test_state_changes_need_the_csrf_token_and_this_origin(
    admin: SignedIn, db: asyncpg.Connection
) -> None:
    client = admin.client
    url = "/dashboard/settings/scim/tokens"
    missing = await client.post(url, data={"note": "x"})
    assert missing.status == 403
    assert "did not come from this dashboard" in await missing.text()
    wrong = await client.post(url, data={"note": "x", "csrf_token": "forged"})
    assert wrong.status == 403
    other_site = await client.post(
        url,
        data={"note": "x", "csrf_token": admin.csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status == 403
    assert "another site" in await other_site.text()
    cross = await client.post(
        url, data={"note": "x", "csrf_token": admin.csrf}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status == 403
    assert await db.fetchval("SELECT count(*) FROM scim_tokens") == 1  # acme's fixture token
    ok = await client.post(
        url,
        data={"note": "x", "csrf_token": admin.csrf},
        headers={"Origin": str(client.make_url("")).rstrip("/"), "Sec-Fetch-Site": "same-origin"},
    )
    assert ok.status == 200
    assert await db.fetchval("SELECT count(*) FROM scim_tokens") == 2


async def test_sign_in_form_needs_its_csrf_cookie(
    dash: Client, db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    await add_admin(db, acme, "ada@acme.example")
    response = await dash.post(
        "/dashboard/signin",
        data={"email": "ada@acme.example", "password": PASSWORD, "csrf_token": "made-up"},
        allow_redirects=False,
    )
    assert response.status == 403


async def test_security_headers_on_every_page(admin: SignedIn) -> None:
    for path in ("/dashboard/settings/scim", "/dashboard/users", "/dashboard/nope"):
        response = await admin.client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cache-Control"] == "no-store"
    missing = await admin.client.get("/dashboard/nope")
    assert missing.status == 404
    assert "Not found" in await missing.text()
    css = await admin.client.get("/dashboard/static/app.css")
    assert css.status == 200
    assert css.headers["X-Content-Type-Options"] == "nosniff"


async def test_secure_host_cookies_outside_local_development(
    aiohttp_client: AiohttpClient, settings: Settings, db: asyncpg.Connection, acme: OrgWithToken
) -> None:
    # settings: PUBLIC_BASE_URL https://scim.example.test, so cookies are __Host- and Secure.
    client = await aiohttp_client(create_app(settings))
    await add_admin(db, acme, "ada@acme.example")
    page = await client.get("/dashboard/signin")
    presignin = next(c for c in page.headers.getall("Set-Cookie") if "scimgw_csrf" in c)
    assert presignin.startswith("__Host-scimgw_csrf=")
    assert "Secure" in presignin
    value = presignin.split(";")[0].split("=", 1)[1]
    response = await client.post(
        "/dashboard/signin",
        data={"email": "ada@acme.example", "password": PASSWORD, "csrf_token": value},
        headers={"Cookie": f"__Host-scimgw_csrf={value}"},
        allow_redirects=False,
    )
    assert response.status == 303
    cookie = next(c for c in response.headers.getall("Set-Cookie") if "scimgw_session" in c)
    assert cookie.startswith("__Host-scimgw_session=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    assert "Domain" not in cookie


async def test_scim_tokens_and_sessions_open_only_their_own_side(
    admin: SignedIn, acme: OrgWithToken
) -> None:
    client = admin.client
    # The session cookie does not open SCIM...
    scim = await client.get("/api/sch/scim/v2/Users")
    assert scim.status == 401
    # ...and a SCIM token does not open the dashboard.
    client.session.cookie_jar.clear()
    page = await client.get("/dashboard/settings/scim", headers=acme.headers, allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"].startswith("/dashboard/signin")


async def test_first_run_setup_creates_the_org_and_admin_once(
    dash: Client, db: asyncpg.Connection
) -> None:
    await admin_store.add_setup_code(db, digest("the-code"))
    assert (await dash.get("/dashboard/setup?code=wrong")).status == 404
    page = await dash.get("/dashboard/setup?code=the-code")
    assert page.status == 200
    form = {
        "csrf_token": csrf_of(await page.text()),
        "code": "the-code",
        "org_name": "Acme Corp",
        "org_slug": "acme",
        "email": "ada@acme.example",
        "password": PASSWORD,
        "password_again": PASSWORD,
    }
    short = await dash.post("/dashboard/setup", data={**form, "password": "short"})
    assert short.status == 400
    assert "at least 12" in await short.text()
    done = await dash.post("/dashboard/setup", data=form, allow_redirects=False)
    assert done.status == 303
    assert done.headers["Location"] == "/dashboard/settings/scim"
    assert (await dash.get("/dashboard/settings/scim")).status == 200
    assert await db.fetchval("SELECT name FROM orgs WHERE slug = 'acme'") == "Acme Corp"
    # Used: the link is dead, also for a second browser.
    assert (await dash.get("/dashboard/setup?code=the-code")).status == 404
    dash.session.cookie_jar.clear()
    fresh = csrf_of(await (await dash.get("/dashboard/signin")).text())
    again = await dash.post(
        "/dashboard/setup", data={**form, "org_slug": "other", "csrf_token": fresh}
    )
    assert again.status == 404
    assert await db.fetchval("SELECT count(*) FROM dashboard_admins") == 1

"""Sign in, sign out, and the first-run setup that creates the first org and admin."""

from __future__ import annotations

import uuid

from aiohttp import web

from dashboard.pages import render, see_other
from dashboard.security import (
    delete_cookie,
    digest,
    hash_password,
    new_secret,
    password_problem,
    presignin_cookie_name,
    session_cookie_name,
    set_cookie,
    verify_password,
)
from gateway.appkeys import DASHBOARD_SESSION, DB_POOL, SETTINGS
from gateway.dbtypes import Connection
from gateway.settings import Settings
from gateway.store import admins as admin_store
from gateway.store import orgs as org_store

SIGNED_IN_HOME = "/dashboard/settings/scim"
WRONG_CREDENTIALS = "The email or password is incorrect."


def _next_path(raw: str | None) -> str:
    """Only a path inside the dashboard, never another site."""
    if raw and raw.startswith("/dashboard/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return SIGNED_IN_HOME


def _presignin_token(request: web.Request) -> tuple[str, bool]:
    """The sign-in form's CSRF value, and whether the cookie must be (re)set."""
    current = request.cookies.get(presignin_cookie_name(request.config_dict[SETTINGS]))
    if current:
        return current, False
    return new_secret(), True


def _render_public(
    request: web.Request, template: str, context: dict[str, object], *, status: int = 200
) -> web.Response:
    token, fresh = _presignin_token(request)
    response = render(request, template, {**context, "presignin_csrf": token}, status=status)
    if fresh:
        settings = request.config_dict[SETTINGS]
        set_cookie(response, settings, presignin_cookie_name(settings), token, max_age=3600)
    return response


async def _start_session(
    conn: Connection,
    settings: Settings,
    response: web.StreamResponse,
    *,
    org_id: uuid.UUID,
    admin_id: uuid.UUID,
    email: str,
) -> None:
    session_id = new_secret()
    await admin_store.start_session(
        conn,
        org_id=org_id,
        admin_id=admin_id,
        email=email,
        session_digest=digest(session_id),
        csrf_token=new_secret(),
        idle_seconds=settings.session_idle_minutes * 60,
        absolute_seconds=settings.session_max_hours * 3600,
    )
    set_cookie(
        response,
        settings,
        session_cookie_name(settings),
        session_id,
        max_age=settings.session_max_hours * 3600,
    )
    delete_cookie(response, settings, presignin_cookie_name(settings))


async def _end_presented_session(request: web.Request, conn: Connection) -> None:
    cookie = request.cookies.get(session_cookie_name(request.config_dict[SETTINGS]))
    if cookie:
        await admin_store.end_session(conn, digest(cookie))


async def signin_page(request: web.Request) -> web.StreamResponse:
    if DASHBOARD_SESSION in request:
        raise web.HTTPSeeOther(_next_path(request.query.get("next")))
    return _render_public(
        request, "signin.html", {"email": "", "error": None, "next": request.query.get("next", "")}
    )


async def signin(request: web.Request) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    form = await request.post()
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    next_path = _next_path(str(form.get("next", "")))
    window = settings.signin_window_minutes * 60

    def again(error: str, status: int) -> web.Response:
        return _render_public(
            request,
            "signin.html",
            {"email": email, "error": error, "next": form.get("next", "")},
            status=status,
        )

    if not email or not password:
        return again("Enter your email and password.", 400)
    pool = request.config_dict[DB_POOL]
    async with pool.acquire() as conn:
        failures = await admin_store.recent_sign_in_failures(
            conn, email, request.remote, window_seconds=window
        )
        if (
            failures.account >= settings.signin_max_per_account
            or failures.ip >= settings.signin_max_per_ip
        ):
            response = again(
                "Too many failed sign-ins for this account or from your network. "
                f"Wait {settings.signin_window_minutes} minutes, then try again.",
                429,
            )
            response.headers["Retry-After"] = str(window)
            return response
        candidate = await admin_store.find_for_sign_in(conn, email)
    usable = candidate if candidate is not None and not candidate.disabled else None
    matches, rehash = await verify_password(usable.password_hash if usable else None, password)
    async with pool.acquire() as conn:
        if not matches or usable is None:
            await admin_store.record_sign_in_failure(
                conn, email, request.remote, window_seconds=window
            )
            return again(WRONG_CREDENTIALS, 401)
        response = see_other(next_path)
        async with conn.transaction():
            await _end_presented_session(request, conn)
            if rehash is not None:
                await admin_store.update_password_hash(conn, usable.org_id, usable.id, rehash)
            await _start_session(
                conn, settings, response, org_id=usable.org_id, admin_id=usable.id, email=email
            )
    return response


async def signout(request: web.Request) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    async with request.config_dict[DB_POOL].acquire() as conn:
        await _end_presented_session(request, conn)
    response = see_other("/dashboard/signin?signed_out=1")
    delete_cookie(response, settings, session_cookie_name(settings))
    return response


async def _valid_setup_code(request: web.Request, code: str) -> bool:
    if not code:
        return False
    async with request.config_dict[DB_POOL].acquire() as conn:
        return await admin_store.setup_code_valid(conn, digest(code))


SETUP_USED = (
    "This setup link has been used or is not valid. An admin can be added with "
    "`python -m gateway admins create --org SLUG --email EMAIL` on the server."
)


async def setup_page(request: web.Request) -> web.StreamResponse:
    code = request.query.get("code", "")
    if not await _valid_setup_code(request, code):
        raise web.HTTPNotFound(text=SETUP_USED)
    return _render_public(
        request,
        "setup.html",
        {"code": code, "error": None, "org_name": "", "org_slug": "", "email": ""},
    )


async def setup(request: web.Request) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    form = await request.post()
    code = str(form.get("code", ""))
    values = {
        "code": code,
        "org_name": str(form.get("org_name", "")).strip(),
        "org_slug": str(form.get("org_slug", "")).strip().lower(),
        "email": str(form.get("email", "")).strip(),
    }
    password = str(form.get("password", ""))

    def again(error: str) -> web.Response:
        return _render_public(request, "setup.html", {**values, "error": error}, status=400)

    if not await _valid_setup_code(request, code):
        raise web.HTTPNotFound(text=SETUP_USED)
    if not org_store.SLUG_PATTERN.match(values["org_slug"]):
        return again("The org's short name takes lowercase letters, digits and '-', e.g. acme.")
    if "@" not in values["email"]:
        return again("Enter the email address you will sign in with.")
    problem = password_problem(password)
    if problem is not None:
        return again(problem)
    if password != str(form.get("password_again", "")):
        return again("The two passwords differ.")
    password_hash = await hash_password(password)
    response = see_other(SIGNED_IN_HOME)
    async with request.config_dict[DB_POOL].acquire() as conn, conn.transaction():
        if not await admin_store.use_setup_code(conn, digest(code)):
            raise web.HTTPNotFound(text=SETUP_USED)
        org = await org_store.get_org_by_slug(conn, values["org_slug"])
        if org is None:
            org = await org_store.create_org(conn, values["org_slug"], values["org_name"] or None)
        admin = await admin_store.create_admin(conn, org.id, values["email"], password_hash)
        await _start_session(
            conn, settings, response, org_id=org.id, admin_id=admin.id, email=admin.email
        )
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/signin", signin_page, name="signin", allow_head=False)
    app.router.add_post("/signin", signin, name="signin_post")
    app.router.add_post("/signout", signout, name="signout")
    app.router.add_get("/setup", setup_page, name="setup", allow_head=False)
    app.router.add_post("/setup", setup, name="setup_post")

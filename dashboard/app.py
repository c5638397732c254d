"""The dashboard sub-application: the org admin's side of the Okta SCIM setup guide.

Mounted at `/dashboard` by `create_app`. Its middlewares render HTML error pages,
resume the admin's session from the cookie and refuse cross-site or token-less
state changes; every response carries the security headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from dashboard import auth, directory, logs, scim_settings
from dashboard.pages import add_template_globals, render
from dashboard.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SECURITY_HEADERS,
    cross_site_refusal,
    digest,
    presignin_cookie_name,
    same_secret,
    session_cookie_name,
)
from gateway.appkeys import DASHBOARD_SESSION, DB_POOL, DB_READ_POOL, LIVE_LOG, SETTINGS
from gateway.store import admins as admin_store

logger = logging.getLogger(__name__)

DASHBOARD_PREFIX = "/dashboard"
HERE = Path(__file__).resolve().parent
# Routes an admin reaches without a session.
PUBLIC_ROUTES = frozenset({"signin", "signin_post", "setup", "setup_post", "static"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@web.middleware
async def error_page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status, message = exc.status, exc.text or exc.reason
    except Exception:
        logger.exception("dashboard request failed: %s %s", request.method, request.path)
        status, message = 500, "Something went wrong on our side. Try again in a moment."
    if _wants_json(request):
        return web.json_response({"error": message}, status=status)
    titles = {
        401: "Please sign in",
        403: "Not allowed",
        404: "Not found",
        405: "Not allowed",
        429: "Too many attempts",
    }
    return render(
        request,
        "error.html",
        {"status": status, "title": titles.get(status, "Something went wrong"), "message": message},
        status=status,
    )


def _route_name(request: web.Request) -> str | None:
    route = request.match_info.route
    if route.name is not None:
        return route.name
    resource = route.resource
    return None if resource is None else resource.name


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.config_dict[SETTINGS]
    cookie = request.cookies.get(session_cookie_name(settings))
    if cookie:
        async with request.config_dict[DB_POOL].acquire() as conn:
            session = await admin_store.resume_session(
                conn,
                digest(cookie),
                idle_seconds=settings.session_idle_minutes * 60,
                absolute_seconds=settings.session_max_hours * 3600,
            )
        if session is not None:
            request[DASHBOARD_SESSION] = session
    if DASHBOARD_SESSION in request or _route_name(request) in PUBLIC_ROUTES:
        return await handler(request)
    if isinstance(request.match_info.http_exception, web.HTTPException):
        raise request.match_info.http_exception
    if request.method in SAFE_METHODS and not _wants_json(request):
        target = request.path_qs
        raise web.HTTPSeeOther(f"{DASHBOARD_PREFIX}/signin?next={quote(target, safe='')}")
    raise web.HTTPUnauthorized(text="Your session has ended. Sign in again.")


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in SAFE_METHODS:
        return await handler(request)
    settings = request.config_dict[SETTINGS]
    refusal = cross_site_refusal(request, settings)
    if refusal is not None:
        raise web.HTTPForbidden(text=f"Refused a request from another site ({refusal}).")
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    session = request.get(DASHBOARD_SESSION)
    if session is not None:
        expected: str | None = session.csrf_token
    else:
        expected = request.cookies.get(presignin_cookie_name(settings))
    if not expected or not same_secret(expected, presented):
        raise web.HTTPForbidden(
            text="This form has expired or did not come from this dashboard. "
            "Reload the page and try again."
        )
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith(f"{DASHBOARD_PREFIX}/static/"):
        # Pages show directory data and, once, a new token: never keep them.
        response.headers["Cache-Control"] = "no-store"


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther(f"{DASHBOARD_PREFIX}/settings/scim")


async def live_log_ctx(app: web.Application) -> AsyncIterator[None]:
    """The live log's one poller of this process; on the root app, after the pool."""
    task = asyncio.create_task(app[LIVE_LOG].run(app[DB_READ_POOL]), name="dashboard-live-log")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def create_dashboard_app() -> web.Application:
    app = web.Application(middlewares=[error_page_middleware, session_middleware, csrf_middleware])
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    add_template_globals(env, DASHBOARD_PREFIX)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", index, name="index", allow_head=False)
    auth.add_routes(app)
    scim_settings.add_routes(app)
    directory.add_routes(app)
    logs.add_routes(app)
    app.router.add_static("/static/", HERE / "static", name="static")
    return app

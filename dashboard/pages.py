"""Rendering: every page gets the session, the CSRF token and the helpers it needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from gateway.appkeys import DASHBOARD_SESSION, SETTINGS
from gateway.tokens import display_token


def when(value: datetime | None, empty: str = "—", *, short: bool = False) -> Markup:
    """A time for the page: UTC in the HTML, turned into the viewer's timezone by app.js,
    with the UTC instant on hover."""
    if value is None:
        return escape(empty)
    utc = value.astimezone(UTC)
    iso = utc.isoformat(timespec="seconds").replace("+00:00", "Z")
    text = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    if short:
        return Markup('<time datetime="{0}" title="{1}" class="short">{1}</time>').format(iso, text)
    return Markup('<time datetime="{0}" title="{1}">{1}</time>').format(iso, text)


def iso(value: datetime) -> str:
    """An instant in UTC, to the second, for a URL or an attribute."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_template_globals(env: jinja2.Environment, prefix: str) -> None:
    env.globals["P"] = prefix
    env.globals["when"] = when
    env.globals["display_token"] = display_token
    env.globals["now"] = lambda: datetime.now(UTC)


def render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
) -> web.Response:
    session = request.get(DASHBOARD_SESSION)
    page = {
        "session": session,
        "csrf_token": session.csrf_token if session else context.pop("presignin_csrf", ""),
        "scim_base_url": request.config_dict[SETTINGS].scim_base_url,
        "nav": context.get("nav", ""),
        **context,
    }
    return aiohttp_jinja2.render_template(template, request, page, status=status)


def see_other(location: str) -> web.Response:
    """A 303 to return (not raise), so cookies can be set on it."""
    return web.Response(status=303, headers={"Location": location})

"""Settings → SCIM: the base URL, tokens (generate once, list, revoke) and the checklist."""

from __future__ import annotations

import uuid
from datetime import timedelta

from aiohttp import web

from dashboard.checklist import build_checklist
from dashboard.pages import render
from gateway.appkeys import DASHBOARD_SESSION, DB_POOL, DB_READ_POOL, SETTINGS
from gateway.store import tokens as token_store
from gateway.tokens import display_token

NOT_IN_ORG = "There is no such token in your org."
EXPIRY_CHOICES = {"": None, "30": 30, "90": 90, "365": 365}


def parse_id(raw: str) -> uuid.UUID:
    """A path id; anything that is not a UUID is simply not found."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise web.HTTPNotFound(text="There is no such item in your org.") from None


async def scim_page(request: web.Request, *, new_token: str | None = None) -> web.Response:
    session = request[DASHBOARD_SESSION]
    settings = request.config_dict[SETTINGS]
    # Tokens from the primary: the page shows a token just generated or revoked. The
    # checklist reads the log, from the replica when there is one.
    async with request.config_dict[DB_POOL].acquire() as conn:
        tokens = await token_store.list_tokens(conn, session.org_id)
    checklist = await build_checklist(
        request.config_dict[DB_READ_POOL], settings, session.org_id, tokens
    )
    revoked = None
    if "revoked" in request.query:
        revoked = next((t for t in tokens if str(t.id) == request.query["revoked"]), None)
    tokens.sort(key=lambda t: (t.revoked_at is not None, -t.created_at.timestamp()))
    return render(
        request,
        "scim.html",
        {
            "nav": "scim",
            "tokens": tokens,
            "checklist": checklist,
            "new_token": new_token,
            "revoked": revoked,
        },
    )


async def settings_scim(request: web.Request) -> web.StreamResponse:
    return await scim_page(request)


async def generate_token(request: web.Request) -> web.StreamResponse:
    session = request[DASHBOARD_SESSION]
    form = await request.post()
    note = str(form.get("note", "")).strip()[:200] or None
    days = EXPIRY_CHOICES.get(str(form.get("expires_days", "")))
    async with request.config_dict[DB_POOL].acquire() as conn:
        token, info = await token_store.create_token(
            conn,
            session.org_id,
            expires_in=timedelta(days=days) if days else None,
            note=note,
        )
    if "application/json" in request.headers.get("Accept", ""):
        # Shown once by app.js in a dialog; never stored, never rendered again.
        return web.json_response(
            {"token": token, "id": str(info.id), "display": display_token(info.last4)}
        )
    return await scim_page(request, new_token=token)


async def _own_token(request: web.Request) -> token_store.TokenInfo:
    session = request[DASHBOARD_SESSION]
    token_id = parse_id(request.match_info["token_id"])
    async with request.config_dict[DB_POOL].acquire() as conn:
        info = await token_store.get_org_token(conn, session.org_id, token_id)
    if info is None:
        raise web.HTTPNotFound(text=NOT_IN_ORG)
    return info


async def revoke_confirm(request: web.Request) -> web.StreamResponse:
    info = await _own_token(request)
    return render(request, "revoke.html", {"nav": "scim", "token": info})


async def revoke(request: web.Request) -> web.StreamResponse:
    session = request[DASHBOARD_SESSION]
    token_id = parse_id(request.match_info["token_id"])
    async with request.config_dict[DB_POOL].acquire() as conn:
        info = await token_store.revoke_org_token(conn, session.org_id, token_id)
    if info is None:
        raise web.HTTPNotFound(text=NOT_IN_ORG)
    raise web.HTTPSeeOther(f"/dashboard/settings/scim?revoked={info.id}")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/settings/scim", settings_scim, name="settings_scim", allow_head=False)
    app.router.add_post("/settings/scim/tokens", generate_token, name="generate_token")
    app.router.add_get(
        "/settings/scim/tokens/{token_id}/revoke",
        revoke_confirm,
        name="revoke_confirm",
        allow_head=False,
    )
    app.router.add_post("/settings/scim/tokens/{token_id}/revoke", revoke, name="revoke")

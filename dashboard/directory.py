"""Users and Teams: what Okta has provisioned, searched and paged, with each one's history."""

from __future__ import annotations

import json
import uuid

from aiohttp import web

from dashboard.pages import render
from dashboard.scim_settings import parse_id
from gateway.appkeys import DASHBOARD_SESSION, DB_READ_POOL
from gateway.dbtypes import Connection
from gateway.store import directory
from gateway.store import provisioning_log as log_store

PAGE_SIZE = 50
HISTORY_ROWS = 50


async def _history(
    conn: Connection, org_id: uuid.UUID, kind: str, name: str, target_id: uuid.UUID
) -> list[log_store.LogRow]:
    """Rows about this user or team: by its name (failures before it existed too) and its id."""
    rows, _ = await log_store.target_history(
        conn, org_id, target_type=kind, name=name, target_id=target_id, limit=HISTORY_ROWS
    )
    return rows


async def users(request: web.Request) -> web.StreamResponse:
    session = request[DASHBOARD_SESSION]
    q = request.query.get("q", "")[:200]
    after = request.query.get("after", "")[:1000]
    async with request.config_dict[DB_READ_POOL].acquire() as conn:
        page = await directory.search_users(conn, session.org_id, q, after=after, limit=PAGE_SIZE)
        total = await directory.count_users(conn, session.org_id)
    return render(
        request,
        "users.html",
        {"nav": "users", "q": q, "after": after, "page": page, "total": total},
    )


async def user(request: web.Request) -> web.StreamResponse:
    session = request[DASHBOARD_SESSION]
    user_id = parse_id(request.match_info["user_id"])
    async with request.config_dict[DB_READ_POOL].acquire() as conn:
        found = await directory.get_user(conn, session.org_id, user_id)
        if found is None:
            raise web.HTTPNotFound(text="There is no such user in your org.")
        teams = await directory.user_teams(conn, session.org_id, user_id)
        history = await _history(conn, session.org_id, "User", found.user_name, user_id)
    return render(
        request,
        "user.html",
        {
            "nav": "users",
            "user": found,
            "teams": teams,
            "history": history,
            "attrs_json": json.dumps(found.attrs, indent=2, ensure_ascii=False, sort_keys=True),
        },
    )


async def teams(request: web.Request) -> web.StreamResponse:
    session = request[DASHBOARD_SESSION]
    q = request.query.get("q", "")[:200]
    after = request.query.get("after", "")[:1000]
    async with request.config_dict[DB_READ_POOL].acquire() as conn:
        page = await directory.search_teams(conn, session.org_id, q, after=after, limit=PAGE_SIZE)
        total = await directory.count_teams(conn, session.org_id)
    return render(
        request,
        "teams.html",
        {"nav": "teams", "q": q, "after": after, "page": page, "total": total},
    )


async def team(request: web.Request) -> web.StreamResponse:
    session = request[DASHBOARD_SESSION]
    team_id = parse_id(request.match_info["team_id"])
    after: uuid.UUID | None = None
    if request.query.get("after"):
        after = parse_id(request.query["after"])
    async with request.config_dict[DB_READ_POOL].acquire() as conn:
        found = await directory.get_team(conn, session.org_id, team_id)
        if found is None:
            raise web.HTTPNotFound(text="There is no such team in your org.")
        members = await directory.team_members(
            conn, session.org_id, team_id, after=after, limit=PAGE_SIZE
        )
        history = await _history(conn, session.org_id, "Group", found.display_name, team_id)
    return render(
        request,
        "team.html",
        {"nav": "teams", "team": found, "members": members, "after": after, "history": history},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/users", users, name="users", allow_head=False)
    app.router.add_get("/users/{user_id}", user, name="user", allow_head=False)
    app.router.add_get("/teams", teams, name="teams", allow_head=False)
    app.router.add_get("/teams/{team_id}", team, name="team", allow_head=False)

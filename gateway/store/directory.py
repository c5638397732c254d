"""The org's directory as the dashboard reads it: users and teams, searched and paged.

Search is by the start of a userName or team name (case-insensitive), or an exact
email or externalId; pages continue after a cursor (the last row's folded name),
so page 2,000 costs what page 1 costs.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from gateway.dbtypes import Connection
from gateway.sql import QUERIES


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    id: uuid.UUID
    user_name: str
    display_name: str | None
    active: bool | None
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    email: str | None
    teams: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Team:
    id: uuid.UUID
    display_name: str
    external_id: str | None
    created_at: datetime
    updated_at: datetime
    member_count: int


@dataclass(frozen=True, slots=True)
class TeamRef:
    id: uuid.UUID
    display_name: str


@dataclass(frozen=True, slots=True)
class Member:
    id: uuid.UUID
    user_name: str
    display_name: str | None
    active: bool | None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    # Where the next page starts, or None on the last page.
    next_after: str | None


def _prefix_pattern(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


async def count_users(conn: Connection, org_id: uuid.UUID) -> int:
    return int(await conn.fetchval(QUERIES["directory_resource_count"], org_id, "User"))


async def count_teams(conn: Connection, org_id: uuid.UUID) -> int:
    return int(await conn.fetchval(QUERIES["directory_resource_count"], org_id, "Group"))


async def search_users(
    conn: Connection, org_id: uuid.UUID, text: str, *, after: str = "", limit: int = 50
) -> Page[DirectoryUser]:
    """Users whose userName starts with `text`, or whose email or externalId is `text`."""
    text = text.strip()
    rows = await conn.fetch(
        QUERIES["directory_search_users"],
        org_id,
        _prefix_pattern(text),
        after,
        limit + 1,
        text.casefold() if text else None,
        text or None,
    )
    users = [DirectoryUser(**{k: v for k, v in dict(r).items() if k != "sort_key"}) for r in rows]
    if len(rows) > limit:
        return Page(users[:limit], rows[limit - 1]["sort_key"])
    return Page(users, None)


async def get_user(conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> DirectoryUser | None:
    row = await conn.fetchrow(QUERIES["directory_user"], org_id, user_id)
    if row is None:
        return None
    values = dict(row)
    values["attrs"] = (
        json.loads(values["attrs"]) if isinstance(values["attrs"], str) else values["attrs"]
    )
    return DirectoryUser(**values)


async def user_teams(
    conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, *, limit: int = 200
) -> list[TeamRef]:
    rows = await conn.fetch(QUERIES["directory_user_teams"], org_id, user_id, limit)
    return [TeamRef(**dict(r)) for r in rows]


async def search_teams(
    conn: Connection, org_id: uuid.UUID, text: str, *, after: str = "", limit: int = 50
) -> Page[Team]:
    """Teams whose name starts with `text`, by name."""
    rows = await conn.fetch(
        QUERIES["directory_search_teams"], org_id, _prefix_pattern(text.strip()), after, limit + 1
    )
    teams = [Team(**{k: v for k, v in dict(r).items() if k != "sort_key"}) for r in rows]
    if len(rows) > limit:
        return Page(teams[:limit], rows[limit - 1]["sort_key"])
    return Page(teams, None)


async def get_team(conn: Connection, org_id: uuid.UUID, team_id: uuid.UUID) -> Team | None:
    row = await conn.fetchrow(QUERIES["directory_team"], org_id, team_id)
    return None if row is None else Team(**dict(row))


async def team_members(
    conn: Connection,
    org_id: uuid.UUID,
    team_id: uuid.UUID,
    *,
    after: uuid.UUID | None = None,
    limit: int = 50,
) -> Page[Member]:
    rows = await conn.fetch(
        QUERIES["directory_team_members"],
        org_id,
        team_id,
        after or uuid.UUID(int=0),
        limit + 1,
    )
    members = [Member(**dict(r)) for r in rows]
    if len(members) > limit:
        return Page(members[:limit], str(members[limit - 1].id))
    return Page(members, None)

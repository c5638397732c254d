"""Orgs: the tenants. Every other table's rows belong to one."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.dbtypes import Connection
from gateway.sql import QUERIES

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class OrgExists(Exception):
    """An org with this slug already exists."""


@dataclass(frozen=True, slots=True)
class Org:
    id: uuid.UUID
    slug: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrgSummary:
    org: Org
    active_tokens: int


def _org(row: asyncpg.Record) -> Org:
    return Org(id=row["id"], slug=row["slug"], name=row["name"], created_at=row["created_at"])


async def create_org(conn: Connection, slug: str, name: str | None = None) -> Org:
    if not SLUG_PATTERN.match(slug):
        raise ValueError(
            f"org slug {slug!r} must be 1-63 lowercase letters, digits or '-', starting with a letter or digit"
        )
    try:
        row = await conn.fetchrow(QUERIES["insert_org"], slug, name or slug)
    except asyncpg.UniqueViolationError:
        raise OrgExists(slug) from None
    assert row is not None
    return _org(row)


async def get_org_by_slug(conn: Connection, slug: str) -> Org | None:
    row = await conn.fetchrow(QUERIES["get_org_by_slug"], slug)
    return None if row is None else _org(row)


async def list_orgs(conn: Connection) -> list[OrgSummary]:
    rows = await conn.fetch(QUERIES["list_orgs"])
    return [OrgSummary(org=_org(row), active_tokens=row["active_tokens"]) for row in rows]

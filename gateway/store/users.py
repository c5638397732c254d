"""SCIM users. Every statement filters on org_id; changes carry their log row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from gateway import jsontext
from gateway.dbtypes import Connection
from gateway.sql import QUERIES
from gateway.store import fetch_page
from gateway.store.provisioning_log import PendingRow, Recorded

_USER_NAME_KEY = "scim_users_user_name_key"
_EXTERNAL_ID_KEY = "scim_users_external_id_key"


class UserNameTaken(Exception):
    """Another user of the org has this userName (compared case-insensitively)."""


class ExternalIdTaken(Exception):
    """Another user of the org has this externalId (compared exactly)."""


def _taken(exc: asyncpg.UniqueViolationError) -> Exception:
    if exc.constraint_name == _USER_NAME_KEY:
        return UserNameTaken()
    if exc.constraint_name == _EXTERNAL_ID_KEY:
        return ExternalIdTaken()
    return exc


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: uuid.UUID
    seq: int
    attrs: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    groups: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UserWrite:
    """A user's stored form: attributes, their folded copy, and the indexed columns."""

    attrs: dict[str, Any]
    attrs_ci: dict[str, Any]
    emails_ci: list[str]

    def columns(self) -> tuple[Any, ...]:
        a = self.attrs
        return (
            a["userName"],
            self.attrs_ci["userName"],
            a.get("externalId"),
            a.get("active"),
            a.get("displayName"),
            self.emails_ci,
            jsontext.dumps(a),
            jsontext.dumps(self.attrs_ci),
        )


def _record(row: asyncpg.Record) -> UserRecord:
    return UserRecord(
        id=row["id"],
        seq=row["seq"],
        attrs=jsontext.loads_stored(row["attrs"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        groups=jsontext.loads_stored(row["groups"]) if row["groups"] else [],
    )


async def insert_user(
    conn: Connection,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    user: UserWrite,
    now: datetime,
    log: PendingRow,
) -> int:
    """Insert the user and its log row in one statement; return its paging seq."""
    try:
        row = await conn.fetchrow(
            QUERIES["insert_user"], org_id, user_id, *user.columns(), now, now, log.text
        )
    except asyncpg.UniqueViolationError as exc:
        raise _taken(exc) from None
    assert row is not None
    log.written(row["log_id"])
    return int(row["seq"])


async def get_user(
    conn: Connection, org_id: uuid.UUID, user_id: uuid.UUID, *, for_update: bool = False
) -> UserRecord | None:
    """The user; with `for_update`, locked until the caller's transaction ends."""
    row = await conn.fetchrow(
        QUERIES["get_user_for_update" if for_update else "get_user"], org_id, user_id
    )
    return None if row is None else _record(row)


async def find_user_by_user_name(
    conn: Connection, org_id: uuid.UUID, user_name_ci: str
) -> tuple[uuid.UUID, str] | None:
    """The id and userName (as stored) of the user with this folded userName."""
    row = await conn.fetchrow(QUERIES["get_user_by_user_name"], org_id, user_name_ci)
    return None if row is None else (row["id"], row["user_name"])


async def find_user_by_external_id(
    conn: Connection, org_id: uuid.UUID, external_id: str
) -> tuple[uuid.UUID, str] | None:
    """(id, userName) of the org's user with this externalId."""
    row = await conn.fetchrow(QUERIES["get_user_by_external_id"], org_id, external_id)
    return None if row is None else (row["id"], row["user_name"])


async def update_user(
    conn: Connection,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    user: UserWrite,
    *,
    now: datetime,
    expected_version: int,
    log: PendingRow,
) -> bool:
    """Replace the user if it is still at `expected_version`; False if it changed or is gone."""
    try:
        row = await conn.fetchrow(
            QUERIES["update_user"],
            org_id,
            user_id,
            *user.columns(),
            now,
            expected_version + 1,
            expected_version,
            log.text,
        )
    except asyncpg.UniqueViolationError as exc:
        raise _taken(exc) from None
    if row is None:
        return False
    log.written(row["log_id"])
    return True


async def delete_user(
    conn: Connection,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    expected_version: int | None,
    log: PendingRow,
) -> bool:
    row = await conn.fetchrow(QUERIES["delete_user"], org_id, user_id, expected_version, log.text)
    if row is None:
        return False
    log.written(row["log_id"])
    return True


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    users: list[UserRecord]
    by_keyset: bool = False  # continued a walk after its noted position


@dataclass(frozen=True, slots=True)
class LookUp:
    """Okta's lookup of a userName: the ListResponse as sent, and its log row as stored."""

    user_id: uuid.UUID | None
    body: str | None  # None: no user has the name (the caller's empty page was logged)
    recorded: Recorded


async def look_up_user_name(
    conn: Connection,
    org_id: uuid.UUID,
    user_name_ci: str,
    *,
    base_url: str,
    row_if_missing: str,
    row_if_found: str,
    body_limit: int,
) -> LookUp:
    """Find the user by folded userName and write the lookup's log row, in one
    statement: `row_if_missing` as it is, or `row_if_found` with the user as its
    target and the rendered ListResponse as its response (both `log_json` text)."""
    row = await conn.fetchrow(
        QUERIES["lookup_user_name"],
        org_id,
        user_name_ci,
        base_url,
        row_if_missing,
        row_if_found,
        body_limit,
    )
    assert row is not None
    return LookUp(row["id"], row["body"], Recorded.parse(row["log_result"]))


async def find_users(conn: Connection, *, where: str | None, order: str, params: list[Any]) -> Page:
    """One page of an org's users and the total matching.

    `params` are $1 org id, $2 the walk (the SHA-256 of its filter text; None
    for a sorted list), $3 the rows before the page (startIndex - 1), $4 limit,
    then the filter's values; `where` (None for every user) and `order` come from
    the filter compiler. The page continues after the position the walk's previous
    page noted only if that lands at row $3 + 1 of the current order (see
    sql/queries/users.sql); else it is found by OFFSET.
    """
    found = await fetch_page(
        conn,
        list_query="list_users",
        find_query="find_users",
        where=where,
        order=order,
        params=params,
    )
    return Page(
        total=found.total,
        users=[_record(r) for r in found.rows],
        by_keyset=found.by_keyset,
    )

"""SCIM groups (teams) and their members, one row per member."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway.dbtypes import Connection
from gateway.sql import QUERIES
from gateway.store import fetch_page
from gateway.store.provisioning_log import PendingRow

_DISPLAY_NAME_KEY = "scim_groups_display_name_key"


class DisplayNameTaken(Exception):
    """Another group of the org has this displayName (compared case-insensitively)."""


class UnknownMembers(Exception):
    """Some of `candidates` are not users of the org (a foreign key said so).

    The statement's transaction is aborted; once it has rolled back,
    `users_not_in_org` tells which ones.
    """

    def __init__(self, candidates: list[uuid.UUID]) -> None:
        super().__init__(len(candidates))
        self.candidates = candidates


@dataclass(frozen=True, slots=True)
class GroupRecord:
    id: uuid.UUID
    seq: int
    attrs: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    members: list[dict[str, Any]] | None  # None when not read


@dataclass(frozen=True, slots=True)
class GroupWrite:
    attrs: dict[str, Any]
    attrs_ci: dict[str, Any]

    def columns(self) -> tuple[Any, ...]:
        return (
            self.attrs["displayName"],
            self.attrs_ci["displayName"],
            self.attrs.get("externalId"),
            json.dumps(self.attrs, ensure_ascii=False),
            json.dumps(self.attrs_ci, ensure_ascii=False),
        )


@dataclass(frozen=True, slots=True)
class Member:
    user_id: uuid.UUID
    display: str | None = None


def _member_arrays(
    members: Collection[Member],
) -> tuple[list[uuid.UUID], list[str | None], list[str | None]]:
    return (
        [m.user_id for m in members],
        [m.display for m in members],
        [m.display.casefold() if m.display is not None else None for m in members],
    )


@dataclass(frozen=True, slots=True)
class MemberChange:
    """What a change did to the membership: ids actually removed and added."""

    removed: list[uuid.UUID]
    added: list[uuid.UUID]


def _record(row: asyncpg.Record) -> GroupRecord:
    members = row["members"]
    return GroupRecord(
        id=row["id"],
        seq=row["seq"],
        attrs=json.loads(row["attrs"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        members=json.loads(members) if members is not None else None,
    )


async def users_not_in_org(
    conn: Connection, org_id: uuid.UUID, ids: Collection[uuid.UUID]
) -> list[uuid.UUID]:
    rows = await conn.fetch(QUERIES["users_not_in_org"], org_id, list(ids))
    return [row["id"] for row in rows]


def _translate(exc: Exception, ids: list[uuid.UUID]) -> Exception:
    if isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name == _DISPLAY_NAME_KEY:
        return DisplayNameTaken()
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return UnknownMembers(ids)
    return exc


async def insert_group(
    conn: Connection,
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    group: GroupWrite,
    members: list[Member],
    now: datetime,
    log: PendingRow | None,
) -> int:
    """Insert the group with its members (and its log row unless `log` is None)."""
    ids, displays, folded = _member_arrays(members)
    try:
        row = await conn.fetchrow(
            QUERIES["insert_group"],
            org_id,
            group_id,
            *group.columns(),
            now,
            now,
            ids,
            log.text if log else None,
            displays,
            folded,
        )
    except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError) as exc:
        raise _translate(exc, ids) from None
    assert row is not None
    if log is not None:
        log.written(row["log_id"])
    return int(row["seq"])


async def get_group(
    conn: Connection, org_id: uuid.UUID, group_id: uuid.UUID, *, with_members: bool
) -> GroupRecord | None:
    row = await conn.fetchrow(QUERIES["get_group"], org_id, group_id, with_members)
    return None if row is None else _record(row)


async def lock_group(
    conn: Connection, org_id: uuid.UUID, group_id: uuid.UUID
) -> GroupRecord | None:
    """The group (without members), locked until the caller's transaction ends."""
    row = await conn.fetchrow(QUERIES["lock_group"], org_id, group_id)
    return None if row is None else _record(row)


async def existing_members(
    conn: Connection, org_id: uuid.UUID, group_id: uuid.UUID, ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    rows = await conn.fetch(QUERIES["existing_members"], org_id, group_id, list(ids))
    return {row["user_id"] for row in rows}


async def find_group_by_display_name(
    conn: Connection, org_id: uuid.UUID, name_ci: str
) -> tuple[uuid.UUID, str] | None:
    """The id and name (as stored) of the team with this folded name."""
    row = await conn.fetchrow(QUERIES["get_group_by_display_name"], org_id, name_ci)
    return None if row is None else (row["id"], row["display_name"])


async def change_group(
    conn: Connection,
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    group: GroupWrite,
    *,
    version: int,
    remove: Collection[uuid.UUID],
    keep: Collection[uuid.UUID] | None,
    add: Collection[Member],
    now: datetime,
    log: PendingRow | None,
) -> MemberChange | None:
    """Write new attributes and apply a membership delta; None if the group is gone.

    `keep` (when not None) replaces the membership: everyone not in it is removed.
    Never reads the existing members.
    """
    ids, displays, folded = _member_arrays(add)
    try:
        row = await conn.fetchrow(
            QUERIES["change_group"],
            org_id,
            group_id,
            *group.columns(),
            version,
            list(remove),
            None if keep is None else list(keep),
            ids,
            now,
            log.text if log else None,
            displays,
            folded,
        )
    except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError) as exc:
        raise _translate(exc, ids) from None
    if row is None:
        return None
    if log is not None:
        log.written(row["log_id"])
    return MemberChange(removed=list(row["removed"] or []), added=list(row["added"] or []))


async def delete_group(
    conn: Connection,
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    *,
    expected_version: int | None,
    log: PendingRow,
) -> bool:
    row = await conn.fetchrow(QUERIES["delete_group"], org_id, group_id, expected_version, log.text)
    if row is None:
        return False
    log.written(row["log_id"])
    return True


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    groups: list[GroupRecord]
    by_keyset: bool = False  # continued a walk after its noted position


async def find_groups(
    conn: Connection, *, where: str | None, order: str, params: list[Any]
) -> Page:
    """A page of groups, paged like `find_users`: $1 org, $2 the walk, $3 rows
    before the page, $4 limit, $5 read members, then the filter's values."""
    found = await fetch_page(
        conn,
        list_query="list_groups",
        find_query="find_groups",
        where=where,
        order=order,
        params=params,
    )
    return Page(
        total=found.total,
        groups=[_record(r) for r in found.rows],
        by_keyset=found.by_keyset,
    )

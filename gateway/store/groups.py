"""SCIM groups (teams) and their members, one row per member."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from gateway import jsontext
from gateway.dbtypes import Connection
from gateway.sql import QUERIES
from gateway.store import fetch_page
from gateway.store.provisioning_log import PendingRow

_DISPLAY_NAME_KEY = "scim_groups_display_name_key"


class DisplayNameTaken(Exception):
    """Another group of the org has this displayName (compared case-insensitively)."""


class UnknownMembers(Exception):
    """Some of the members to add are not users of the org (a foreign key said so).

    The statement's transaction is aborted; once it has rolled back,
    `unknown_member_ids` tells which ones.
    """


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
            jsontext.dumps(self.attrs),
            jsontext.dumps(self.attrs_ci),
        )


@dataclass(frozen=True, slots=True)
class Member:
    user_id: uuid.UUID
    display: str | None = None


# Members to remove up to this many are sent as a uuid[] and found by primary
# key; more are sent as one JSON object (see change_group in sql/queries/groups.sql).
FEW_MEMBERS = 100


@dataclass(frozen=True, slots=True)
class MemberParams:
    """A membership change as the statement's parameters.

    asyncpg encodes an array parameter element by element in Python on the event
    loop (a 100,000-member team PUT: about a quarter of a second), so long lists
    go as one JSON text: one copy. Build these with `member_params`, off the loop
    when the change is large.
    """

    # Ids to remove: ["<user id>", …]; and the same as a list when they are few,
    # else as {"<user id>": 0, …} (looked up by key).
    remove: str
    remove_few: list[uuid.UUID]
    remove_many: str | None
    # Members to add (or whose display changed): [["<user id>", display, folded display], …].
    add: str
    # Whether those to add become the whole membership (everyone else is removed).
    replace: bool


def member_params(
    *, remove: Collection[uuid.UUID], add: Collection[Member], replace: bool
) -> MemberParams:
    removed = [str(i) for i in remove]
    few = len(removed) <= FEW_MEMBERS
    return MemberParams(
        remove=jsontext.string_array(removed),
        remove_few=list(remove) if few else [],
        remove_many=None if few else jsontext.key_object(removed),
        add=jsontext.dumps(
            [
                [str(m.user_id), m.display, None if m.display is None else m.display.casefold()]
                for m in add
            ]
        ),
        replace=replace,
    )


@dataclass(frozen=True, slots=True)
class MemberChange:
    """What a change did to the membership: how many members were removed and added."""

    removed: int
    added: int


# A team's members arrive as one JSON text; decoding a large one (100,000
# members: about 8 MB) would hold the event loop for tens of milliseconds.
_DECODE_OFF_LOOP_CHARACTERS = 256 * 1024


async def _records(rows: list[asyncpg.Record]) -> list[GroupRecord]:
    size = sum(len(r["members"]) for r in rows if r["members"] is not None)
    if size > _DECODE_OFF_LOOP_CHARACTERS:
        return await asyncio.to_thread(lambda: [_record(r) for r in rows])
    return [_record(r) for r in rows]


def _record(row: asyncpg.Record) -> GroupRecord:
    members = row["members"]
    return GroupRecord(
        id=row["id"],
        seq=row["seq"],
        attrs=jsontext.loads_stored(row["attrs"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        members=jsontext.loads(members) if members is not None else None,
    )


@dataclass(frozen=True, slots=True)
class UnknownMemberIds:
    """Which of the ids a change named are not users of the org (the first few, and how
    many), and which of the rest were therefore not applied either."""

    unknown: list[str]
    unknown_count: int
    not_applied: list[str]
    not_applied_count: int


async def unknown_member_ids(
    conn: Connection, org_id: uuid.UUID, params: MemberParams, *, shown: int
) -> UnknownMemberIds:
    """Of the ids `params` adds, those that are not users of the org (in the order sent);
    of all ids it names, the users (sorted): at most `shown` of each."""
    row = await conn.fetchrow(
        QUERIES["unknown_member_ids"], org_id, params.add, params.remove, shown
    )
    assert row is not None
    return UnknownMemberIds(
        unknown=[str(i) for i in row["unknown"] or []],
        unknown_count=int(row["unknown_count"]),
        not_applied=[str(i) for i in row["not_applied"] or []],
        not_applied_count=int(row["not_applied_count"]),
    )


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name == _DISPLAY_NAME_KEY:
        return DisplayNameTaken()
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return UnknownMembers()
    return exc


async def insert_group(
    conn: Connection,
    org_id: uuid.UUID,
    group_id: uuid.UUID,
    group: GroupWrite,
    members: MemberParams | None,
    now: datetime,
    log: PendingRow | None,
) -> int:
    """Insert the group with its members to add (and its log row unless `log` is None)."""
    try:
        row = await conn.fetchrow(
            QUERIES["insert_group"],
            org_id,
            group_id,
            *group.columns(),
            now,
            now,
            members.add if members else "[]",
            log.text if log else None,
        )
    except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError) as exc:
        raise _translate(exc) from None
    assert row is not None
    if log is not None:
        log.written(row["log_id"])
    return int(row["seq"])


async def get_group(
    conn: Connection, org_id: uuid.UUID, group_id: uuid.UUID, *, with_members: bool
) -> GroupRecord | None:
    row = await conn.fetchrow(QUERIES["get_group"], org_id, group_id, with_members)
    return None if row is None else (await _records([row]))[0]


async def lock_group(
    conn: Connection, org_id: uuid.UUID, group_id: uuid.UUID
) -> GroupRecord | None:
    """The group (without members), locked until the caller's transaction ends."""
    row = await conn.fetchrow(QUERIES["lock_group"], org_id, group_id)
    return None if row is None else _record(row)


async def absent_members(
    conn: Connection, org_id: uuid.UUID, group_id: uuid.UUID, params: MemberParams, *, shown: int
) -> list[str]:
    """The first `shown` (sorted) of the ids `params` removes that are not members."""
    rows = await conn.fetch(QUERIES["absent_members"], org_id, group_id, params.remove, shown)
    return [str(row["user_id"]) for row in rows]


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
    members: MemberParams,
    now: datetime,
    log: PendingRow | None,
) -> MemberChange | None:
    """Write new attributes and apply a membership delta; None if the group is gone.

    With `members.replace` those added become the membership: everyone else is
    removed. Never reads the existing members into Python.
    """
    try:
        row = await conn.fetchrow(
            QUERIES["change_group"],
            org_id,
            group_id,
            *group.columns(),
            version,
            members.remove_few,
            members.replace,
            members.add,
            now,
            log.text if log else None,
            members.remove_many,
        )
    except (asyncpg.UniqueViolationError, asyncpg.ForeignKeyViolationError) as exc:
        raise _translate(exc) from None
    if row is None:
        return None
    if log is not None:
        log.written(row["log_id"])
    return MemberChange(removed=int(row["removed"]), added=int(row["added"]))


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
        groups=await _records(found.rows),
        by_keyset=found.by_keyset,
    )

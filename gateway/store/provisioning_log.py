"""The provisioning log: one row per SCIM request, and the reads the CLI and dashboard need.

Every read filters by org and is index-backed: a page by any mix of outcome, event,
code, job, target and time; failures still unresolved; a live tail by transaction
id; a user's or team's history; jobs from their summaries; hourly counts.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from gateway.dbtypes import Connection
from gateway.sql import QUERIES
from gateway.store import parse_ip


@dataclass(slots=True)
class LogRow:
    occurred_at: datetime
    request_id: str
    method: str
    path: str
    query: str
    status: int
    duration_ms: float
    org_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    scim_type: str | None = None
    detail: str | None = None
    auth_failure: str | None = None
    user_agent: str | None = None
    client_ip: str | None = None
    request_body: str | None = None
    response_body: str | None = None
    notes: list[str] = field(default_factory=list)
    event: str = "Unknown"
    event_detail: str | None = None
    outcome: str = "success"
    code: str | None = None
    code_args: dict[str, Any] | None = None
    reason: str | None = None
    target_type: str | None = None
    target_id: uuid.UUID | None = None
    target_name: str | None = None
    target_display: str | None = None
    target_key: str | None = None
    # Read back only: set by the database.
    job_id: uuid.UUID | None = None
    id: int | None = None
    finished_at: datetime | None = None
    xid: int | None = None
    # For failures: whether it still needs action (no later success for its target).
    unresolved: bool | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """The row's outcome and code as stored (the duplicate detector decides inside SQL)."""

    outcome: str
    code: str | None

    @classmethod
    def parse(cls, text: str) -> Recorded:
        outcome, _, code = text.partition(":")
        return cls(outcome, code or None)


@dataclass(slots=True)
class PendingRow:
    """A log row to write in the same statement as a change; the store notes what it stored."""

    text: str
    recorded: Recorded | None = None

    def written(self, value: str | None) -> None:
        if value is not None:
            self.recorded = Recorded.parse(value)


# JSON text escapes of NUL (PostgreSQL text cannot hold it) not preceded by an escaping backslash.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_json(text: str) -> str:
    """JSON text PostgreSQL can store: NUL and lone surrogates become visible escapes.

    `\\u0000` in a string turns into the six characters `\\u0000` (an escaped
    backslash), a lone surrogate into `\\udXXX`; nothing else changes.
    """
    if "\\u0000" in text:
        text = _NUL_ESCAPE.sub(lambda m: m[1] + "\\\\u0000", text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub(lambda m: f"\\\\u{ord(m[0]):04x}", text)
    return text


def log_json(row: LogRow) -> str:
    """The row as the jsonb argument of `record_provisioning_log`, for single-statement writes."""
    ip = parse_ip(row.client_ip)
    doc = {
        "org_id": str(row.org_id) if row.org_id else None,
        "occurred_at": row.occurred_at.isoformat(),
        "token_id": str(row.token_id) if row.token_id else None,
        "request_id": row.request_id,
        "method": row.method,
        "path": row.path,
        "query": row.query,
        "status": row.status,
        "duration_ms": row.duration_ms,
        "scim_type": row.scim_type,
        "detail": row.detail,
        "auth_failure": row.auth_failure,
        "user_agent": row.user_agent,
        "client_ip": str(ip) if ip else None,
        "request_body": row.request_body,
        "response_body": row.response_body,
        "notes": row.notes,
        "event": row.event,
        "event_detail": row.event_detail,
        "outcome": row.outcome,
        "code": row.code,
        "code_args": row.code_args,
        "reason": row.reason,
        "target_type": row.target_type,
        "target_id": str(row.target_id) if row.target_id else None,
        "target_name": row.target_name,
        "target_display": row.target_display,
        "target_key": row.target_key,
    }
    try:
        return storable_json(orjson.dumps(doc, default=str).decode())
    except TypeError:  # a lone surrogate or a huge integer: the standard encoder writes them
        return storable_json(json.dumps(doc, ensure_ascii=False, default=str))


async def record_request(conn: Connection, row: LogRow) -> Recorded:
    return await record_json(conn, log_json(row))


async def record_json(conn: Connection, entry: str) -> Recorded:
    """Write one row from `log_json` text (a spooled row is replayed through here)."""
    return Recorded.parse(await conn.fetchval(QUERIES["insert_log_row"], entry))


async def record_json_rows(conn: Connection, entries: list[str]) -> int:
    """Write rows from `log_json` texts in one statement; how many were written."""
    return int(await conn.fetchval(QUERIES["insert_log_rows"], "[" + ",".join(entries) + "]"))


def _log_reads() -> dict[str, str]:
    """The reads of log rows, with the one column list of sql/queries in their markers."""

    def select_list(name: str) -> str:
        text = QUERIES[name]
        start = re.search(r"(?m)^SELECT ", text)
        assert start is not None, name
        return text[start.end() :]

    columns, unresolved = select_list("log_row_columns"), select_list("log_row_unresolved")
    names = ("log_page", "log_page_prefix", "log_page_target", "log_page_event",
             "log_page_unresolved",
             "log_page_unattributed", "log_row", "log_target_history", "log_tail")  # fmt: skip
    return {
        name: QUERIES[name]
        .replace("/*log_row*/", f"{columns},\n       {unresolved}")
        .replace("/*log_row_columns*/", columns)
        for name in names
    }


LOG_READS = _log_reads()
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which rows of an org: every field that is set must hold."""

    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None
    event: str | None = None
    code: str | None = None
    job_id: uuid.UUID | None = None
    target_id: uuid.UUID | None = None
    # A userName, team name or id (case-insensitive); "name*" for names starting so.
    target: str | None = None
    # Failures that still need action only.
    unresolved: bool = False


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next (older) page starts: the last row of this one."""

    occurred_at: datetime
    id: int

    def encode(self) -> str:
        return f"{self.occurred_at.isoformat()}|{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        stamp, _, row_id = text.rpartition("|")
        return cls(datetime.fromisoformat(stamp), int(row_id))


def _row(record: Any) -> LogRow:
    values = dict(record)
    values.pop("snapshot", None)
    args = values.get("code_args")
    values["code_args"] = json.loads(args) if isinstance(args, str) else args
    if values.get("xid") is not None:
        values["xid"] = int(values["xid"])
    return LogRow(**values)


# Above every character a key can hold: the high end of a prefix's key range.
_MAX_CHAR = "\U0010ffff"


def target_keys(text: str) -> tuple[list[str], tuple[list[str], list[str]] | None]:
    """The exact target keys a search text stands for, or for "name*" the key ranges
    [low, high) of names starting so (index ranges, not a pattern filter)."""
    folded = text.strip().casefold()
    if folded.endswith("*"):
        stem = folded[:-1]
        lows = [f"user:{stem}", f"group:{stem}"]
        return [], (lows, [low + _MAX_CHAR for low in lows])
    return [f"user:{folded}", f"group:{folded}"], None


# One fixed fragment per filter; {a} is the table that drives the page (the log, or
# the unresolved failures), {n} the filter's first parameter. Values are never formatted in.
_FILTERS = {
    "outcome": "AND l.outcome = ${n}::text",
    "event": "AND {a}.event = ${n}::text",
    "code": "AND l.code = ${n}::text",
    "job_id": "AND {a}.job_id = ${n}::uuid",
    "target_id": "AND l.target_id = ${n}::uuid",
    "keys": "AND {a}.target_key = ANY(${n}::text[])",
    "ranges": (
        "AND (({a}.target_key >= ${n}::text AND {a}.target_key < ${n1}::text)"
        " OR ({a}.target_key >= ${n2}::text AND {a}.target_key < ${n3}::text))"
    ),
}


_TARGET, _EVENT = frozenset({"target"}), frozenset({"event"})
# Filters on the log's own columns (never on the unresolved-failures table).
_LOG_ONLY = frozenset({"outcome", "code", "target_id"})


def _filters(
    where: LogFilter, driver: str, first: int, *, in_query: frozenset[str] = frozenset()
) -> tuple[str, str, list[Any]]:
    """(fragments on the driving table, fragments on the log's own columns, values).

    With the log driving the page both go in one place; with unresolved failures
    driving it, the log's own columns are filtered where each row is fetched. The
    filters named in `in_query` ("target", "event") are left to the query itself.
    """
    keys, ranges = target_keys(where.target) if where.target else ([], None)
    if "target" in in_query:
        keys, ranges = [], None
    event = None if "event" in in_query else where.event
    chosen: list[tuple[str, list[Any]]] = [
        (name, [value])
        for name, value in (
            ("outcome", where.outcome),
            ("event", event),
            ("code", where.code),
            ("job_id", where.job_id),
            ("target_id", where.target_id),
            ("keys", keys or None),
        )
        if value is not None
    ]
    if ranges is not None:
        (user_low, group_low), (user_high, group_high) = ranges
        chosen.append(("ranges", [user_low, user_high, group_low, group_high]))
    on_driver: list[str] = []
    on_log: list[str] = []
    params: list[Any] = []
    n = first
    for name, values in chosen:
        fragment = _FILTERS[name].format(a=driver, n=n, n1=n + 1, n2=n + 2, n3=n + 3)
        (on_log if name in _LOG_ONLY and driver != "l" else on_driver).append(fragment)
        params.extend(values)
        n += len(values)
    return "\n  ".join(on_driver), "\n      ".join(on_log), params


async def list_log(
    conn: Connection,
    org_id: uuid.UUID | None,
    where: LogFilter,
    *,
    limit: int = 50,
    before: Cursor | None = None,
) -> tuple[list[LogRow], Cursor | None]:
    """An org's log rows (org None: rows no org could be found for), newest first,
    with the cursor of the next page, if any."""
    window: list[Any] = [
        where.since or _EARLIEST,
        where.until or _LATEST,
        before.occurred_at if before else _LATEST,
        before.id if before else 0,
        limit + 1,
    ]
    keys, ranges = target_keys(where.target) if where.target else ([], None)
    if org_id is None:
        records = await conn.fetch(LOG_READS["log_page_unattributed"], *window)
    elif ranges is not None and not where.unresolved:
        # "name*": the key ranges ($7 … $10) drive the page; other filters from $11.
        (user_low, group_low), (user_high, group_high) = ranges
        fragment, _, values = _filters(where, "l", first=11, in_query=_TARGET)
        sql = LOG_READS["log_page_prefix"].replace("/*filters*/", fragment)
        records = await conn.fetch(
            sql, org_id, *window, user_low, user_high, group_low, group_high, *values
        )
    elif keys and not where.unresolved:
        # One name: its two keys ($7 user, $8 team) drive the page; other filters from $9.
        user_key, group_key = keys
        fragment, _, values = _filters(where, "l", first=9, in_query=_TARGET)
        sql = LOG_READS["log_page_target"].replace("/*filters*/", fragment)
        records = await conn.fetch(sql, org_id, *window, user_key, group_key, *values)
    elif where.event and not where.outcome and not where.unresolved:
        # One event, any outcome ($7): a branch per outcome reads the event's index in order.
        fragment, _, values = _filters(where, "l", first=8, in_query=_EVENT)
        sql = LOG_READS["log_page_event"].replace("/*filters*/", fragment)
        records = await conn.fetch(sql, org_id, *window, where.event, *values)
    else:
        name, driver = ("log_page_unresolved", "u") if where.unresolved else ("log_page", "l")
        fragment, log_fragment, values = _filters(where, driver, first=7)
        sql = LOG_READS[name].replace("/*filters*/", fragment)
        sql = sql.replace("/*log_filters*/", log_fragment)
        records = await conn.fetch(sql, org_id, *window, *values)
    rows = [_row(r) for r in records]
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        return rows, Cursor(last.occurred_at, last.id or 0)
    return rows, None


async def log_row(conn: Connection, org_id: uuid.UUID, row_id: int) -> LogRow | None:
    record = await conn.fetchrow(LOG_READS["log_row"], org_id, row_id)
    return _row(record) if record else None


async def target_history(
    conn: Connection,
    org_id: uuid.UUID,
    *,
    target_type: str,
    name: str | None,
    target_id: uuid.UUID | None,
    limit: int = 50,
    before: Cursor | None = None,
) -> tuple[list[LogRow], Cursor | None]:
    """A user's or team's rows, newest first: by its folded name and by its id."""
    kind = target_type.lower()
    keys = [f"{kind}:{name.casefold()}"] if name else []
    if target_id is not None:
        keys.append(f"{kind}:{target_id}")
    rows = [
        _row(r)
        for r in await conn.fetch(
            LOG_READS["log_target_history"],
            org_id,
            keys,
            target_id,
            before.occurred_at if before else _LATEST,
            before.id if before else 0,
            limit + 1,
        )
    ]
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, Cursor(rows[-1].occurred_at, rows[-1].id or 0)
    return rows, None


_SNAPSHOT = re.compile(r"^\d+:\d+:[\d,]*$")


@dataclass(frozen=True, slots=True)
class TailCursor:
    """A live tail's position: a database snapshot.

    The next rows are exactly those the snapshot cannot see and the database now
    can: a row whose transaction commits after a later id's is delivered when it
    commits, never skipped, never twice. `seen` holds rows delivered from this
    snapshot while a burst was read in batches.
    """

    snapshot: str
    seen: frozenset[int] = frozenset()

    def encode(self) -> str:
        return self.snapshot + "|" + ",".join(str(i) for i in sorted(self.seen))

    @classmethod
    def decode(cls, text: str) -> TailCursor:
        """Raises ValueError for anything that is not a cursor this module made."""
        snapshot, _, seen = text.partition("|")
        if not _SNAPSHOT.match(snapshot):
            raise ValueError(f"not a tail cursor: {text[:80]!r}")
        return cls(snapshot, frozenset(int(i) for i in seen.split(",") if i))


TAIL_WINDOW = timedelta(days=1)


async def tail_start(conn: Connection) -> TailCursor:
    """A tail that delivers rows committed from now on."""
    return TailCursor(str(await conn.fetchval(QUERIES["log_tail_start"])))


async def log_tail(
    conn: Connection, org_id: uuid.UUID, cursor: TailCursor, *, limit: int = 500
) -> tuple[list[LogRow], TailCursor]:
    """Rows committed since the cursor, in commit-id order, and the next cursor.

    Rows that started more than a day before they committed (a spool replayed after
    a long outage) appear in pages, not in the tail.
    """
    records = await conn.fetch(
        LOG_READS["log_tail"],
        org_id,
        cursor.snapshot,
        list(cursor.seen),
        datetime.now(UTC) - TAIL_WINDOW,
        limit + 1,
    )
    rows = [_row(r) for r in records if r["id"] is not None]
    if len(rows) > limit:
        # A burst: stay on this snapshot and skip what was delivered.
        rows = rows[:limit]
        return rows, TailCursor(cursor.snapshot, cursor.seen | {r.id for r in rows if r.id})
    return rows, TailCursor(str(records[0]["snapshot"]))


# A job with no request for this long, with failures not yet resolved, is stalled.
STALL_AFTER = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class JobSummary:
    job_id: uuid.UUID
    token_id: uuid.UUID | None
    started_at: datetime
    ended_at: datetime
    requests: int
    successes: int
    failures: int
    warnings: int
    resolved: int
    unresolved: int
    users: int
    teams: int
    first_sync: bool = False
    provisioned: bool = False
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def duration_seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    def state(self, now: datetime | None = None) -> str:
        """running, stalled (quiet with failures pending) or finished."""
        quiet = (now or datetime.now(UTC)) - self.ended_at
        if quiet < STALL_AFTER:
            return "running"
        return "stalled" if self.unresolved else "finished"

    def count(self, event: str, outcome: str | None = None) -> int:
        by_outcome = self.counts.get(event, {})
        return by_outcome.get(outcome, 0) if outcome else sum(by_outcome.values())


def _job(record: Any, first: uuid.UUID | None) -> JobSummary:
    counts: dict[str, dict[str, int]] = {}
    for key, n in json.loads(record["counts"] or "{}").items():
        event, _, outcome = key.rpartition("|")
        counts.setdefault(event, {})[outcome] = int(n)
    return JobSummary(
        job_id=record["job_id"],
        token_id=record["token_id"],
        started_at=record["started_at"],
        ended_at=record["ended_at"],
        requests=record["requests"],
        successes=record["successes"],
        failures=record["failures"],
        warnings=record["warnings"],
        resolved=record["resolved"],
        unresolved=record["unresolved"],
        users=record["users"],
        teams=record["teams"],
        first_sync=record["job_id"] == first,
        provisioned=record["provisioned_at"] is not None,
        counts=counts,
    )


async def first_sync_job(conn: Connection, org_id: uuid.UUID) -> uuid.UUID | None:
    """The org's first sync: its first job that created a user or pushed a team."""
    value = await conn.fetchval(QUERIES["first_sync_job"], org_id)
    return value if isinstance(value, uuid.UUID) else None


async def list_jobs(
    conn: Connection, org_id: uuid.UUID, *, since: datetime | None = None, limit: int = 20
) -> list[JobSummary]:
    """The org's sync jobs, newest first, from their summaries (never from the log)."""
    first = await first_sync_job(conn, org_id)
    sql = QUERIES["list_jobs"].replace("/*job*/", "")
    rows = await conn.fetch(sql, org_id, since or _EARLIEST, limit)
    return [_job(r, first) for r in rows]


async def job_summary(conn: Connection, org_id: uuid.UUID, job_id: uuid.UUID) -> JobSummary | None:
    first = await first_sync_job(conn, org_id)
    sql = QUERIES["list_jobs"].replace("/*job*/", "AND s.job_id = $4::uuid")
    rows = await conn.fetch(sql, org_id, _EARLIEST, 1, job_id)
    return _job(rows[0], first) if rows else None


async def first_sync(conn: Connection, org_id: uuid.UUID) -> JobSummary | None:
    job_id = await first_sync_job(conn, org_id)
    return await job_summary(conn, org_id, job_id) if job_id else None


async def hourly_counts(
    conn: Connection, org_id: uuid.UUID, *, since: datetime, until: datetime | None = None
) -> dict[datetime, dict[str, int]]:
    """Requests per UTC hour by "e:<event>|<outcome>", "c:<code>" and "m:<METHOD> <type>",
    for the whole hours from the one `since` falls in to the one before `until`."""
    out: dict[datetime, dict[str, int]] = {}
    for r in await conn.fetch(QUERIES["log_hourly"], org_id, since, until or _LATEST):
        out.setdefault(r["hour"], {})[r["key"]] = int(r["n"])
    return out


async def hourly_outcomes(
    conn: Connection,
    org_id: uuid.UUID,
    *,
    since: datetime,
    until: datetime | None = None,
    bucket_hours: int = 1,
) -> dict[datetime, dict[str, int]]:
    """Requests by outcome (success, warning, failure) in buckets of `bucket_hours` whole
    UTC hours aligned to the Unix epoch (1: per hour), from the hourly counts; only
    buckets with requests."""
    rows = await conn.fetch(
        QUERIES["log_hourly_outcomes"], org_id, since, until or _LATEST, bucket_hours
    )
    return {
        r["bucket"]: {o: int(r[o]) for o in ("success", "warning", "failure")}
        for r in rows
        if r["success"] or r["warning"] or r["failure"]
    }


@asynccontextmanager
async def upkeep_lock(conn: Connection) -> AsyncIterator[bool]:
    """Whether this connection holds the log-upkeep lock (a session lock, released after)."""
    mine = bool(await conn.fetchval(QUERIES["try_upkeep_lock"]))
    try:
        yield mine
    finally:
        if mine:
            await conn.fetchval(QUERIES["upkeep_unlock"])


async def ensure_partitions(conn: Connection, *, days_ahead: int = 7) -> int:
    """Create the daily log partitions from yesterday to `days_ahead` days from now (UTC)."""
    today = datetime.now(UTC).date()
    return int(
        await conn.fetchval(
            QUERIES["ensure_log_partitions"], today - timedelta(days=1), days_ahead + 2
        )
    )


async def drop_expired_partitions(conn: Connection, *, retention_days: int) -> int:
    """Drop the daily partitions wholly older than the retention period."""
    cutoff = datetime.now(UTC).date() - timedelta(days=retention_days)
    return int(await conn.fetchval(QUERIES["drop_log_partitions"], cutoff))

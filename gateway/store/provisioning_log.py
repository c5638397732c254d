"""The provisioning log: one row per SCIM request."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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
    reason: str | None = None
    target_type: str | None = None
    target_id: uuid.UUID | None = None
    target_name: str | None = None
    target_display: str | None = None
    job_id: uuid.UUID | None = None
    id: int | None = None


def log_json(row: LogRow) -> str:
    """The row as the jsonb argument of `record_provisioning_log`, for single-statement writes."""
    ip = parse_ip(row.client_ip)
    return json.dumps(
        {
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
            "reason": row.reason,
            "target_type": row.target_type,
            "target_id": str(row.target_id) if row.target_id else None,
            "target_name": row.target_name,
            "target_display": row.target_display,
        },
        ensure_ascii=False,
    )


async def record_request(conn: Connection, row: LogRow) -> None:
    await conn.execute(QUERIES["insert_log_row"], log_json(row))


_LEADING = {
    None: "AND $6::text IS NULL",  # always true: keeps $6 typed
    "outcome": "AND outcome = $6::text",
    "event": "AND event = $6::text",
    "target": "AND target_id = $6::uuid",
    "job": "AND job_id = $6::uuid",
}
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class LogFilter:
    since: datetime | None = None
    outcome: str | None = None
    event: str | None = None
    target_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None


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


async def list_log(
    conn: Connection,
    org_id: uuid.UUID,
    where: LogFilter,
    *,
    limit: int = 50,
    before: Cursor | None = None,
) -> tuple[list[LogRow], Cursor | None]:
    """An org's log rows, newest first; the cursor of the next page, if any."""
    leading: str | None
    value: Any
    if where.target_id is not None:
        leading, value = "target", where.target_id
    elif where.job_id is not None:
        leading, value = "job", where.job_id
    elif where.event is not None:
        leading, value = "event", where.event
    elif where.outcome is not None:
        leading, value = "outcome", where.outcome
    else:
        leading, value = None, None
    sql = QUERIES["log_page"].replace("/*leading*/", _LEADING[leading])
    params: list[Any] = [
        org_id,
        where.since or _EARLIEST,
        before.occurred_at if before else _LATEST,
        before.id if before else 0,
        limit + 1,
        str(value) if leading in ("outcome", "event") else value,
        where.outcome if leading != "outcome" else None,
        where.event if leading != "event" else None,
    ]
    if leading is None:
        params[5] = None
    rows = [LogRow(**dict(r)) for r in await conn.fetch(sql, *params)]
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        return rows, Cursor(last.occurred_at, last.id or 0)
    return rows, None


@dataclass(frozen=True, slots=True)
class JobSummary:
    job_id: uuid.UUID
    started_at: datetime
    ended_at: datetime
    requests: int
    successes: int
    failures: int
    warnings: int
    first_sync: bool = False
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


async def list_jobs(
    conn: Connection, org_id: uuid.UUID, *, since: datetime | None = None, limit: int = 20
) -> list[JobSummary]:
    """The org's sync jobs, newest first, each with its counts per event and outcome."""
    rows = await conn.fetch(QUERIES["list_jobs"], org_id, since or _EARLIEST, limit)
    first = await conn.fetchval(QUERIES["first_job"], org_id)
    return [
        await _with_counts(conn, org_id, JobSummary(**dict(r), first_sync=r["job_id"] == first))
        for r in rows
    ]


async def job_summary(conn: Connection, org_id: uuid.UUID, job_id: uuid.UUID) -> JobSummary | None:
    jobs = [j for j in await list_jobs(conn, org_id, limit=10_000) if j.job_id == job_id]
    return jobs[0] if jobs else None


async def _with_counts(conn: Connection, org_id: uuid.UUID, job: JobSummary) -> JobSummary:
    for row in await conn.fetch(QUERIES["job_counts"], org_id, job.job_id):
        job.counts.setdefault(row["event"], {})[row["outcome"]] = row["n"]
    return job


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

"""The provisioning log: one row per SCIM request."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime

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


async def latest_rows(conn: Connection, org_id: uuid.UUID, limit: int = 50) -> list[LogRow]:
    rows = await conn.fetch(QUERIES["latest_log_rows"], org_id, limit)
    return [LogRow(**dict(row)) for row in rows]

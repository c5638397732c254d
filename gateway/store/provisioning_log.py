"""The provisioning log: one row per SCIM request."""

from __future__ import annotations

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
    id: int | None = None


async def record_request(conn: Connection, row: LogRow) -> None:
    await conn.execute(
        QUERIES["insert_log_row"],
        row.org_id,
        row.occurred_at,
        row.token_id,
        row.request_id,
        row.method,
        row.path,
        row.query,
        row.status,
        row.duration_ms,
        row.scim_type,
        row.detail,
        row.auth_failure,
        row.user_agent,
        parse_ip(row.client_ip),
        row.request_body,
        row.response_body,
        row.notes,
    )


async def latest_rows(conn: Connection, org_id: uuid.UUID, limit: int = 50) -> list[LogRow]:
    rows = await conn.fetch(QUERIES["latest_log_rows"], org_id, limit)
    return [LogRow(**dict(row)) for row in rows]

"""The counts behind an org's misconfiguration signals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from gateway.dbtypes import Connection
from gateway.sql import QUERIES


async def request_kinds(conn: Connection, org_id: uuid.UUID, since: datetime) -> dict[str, Any]:
    row = await conn.fetchrow(QUERIES["signal_request_kinds"], org_id, since)
    return dict(row) if row else {}


async def user_names(conn: Connection, org_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow(QUERIES["signal_user_names"], org_id)
    return dict(row) if row else {}


async def duplicates(conn: Connection, org_id: uuid.UUID, limit: int = 5) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(QUERIES["signal_duplicates"], org_id, limit)]

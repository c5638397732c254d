"""What the metrics scrape reads from the database: cheap counts, never a table scan."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gateway.dbtypes import Connection
from gateway.sql import QUERIES
from gateway.store.provisioning_log import STALL_AFTER


@dataclass(frozen=True, slots=True)
class FleetState:
    users: int
    users_deactivated: int
    teams: int
    memberships: int
    tokens_active: int
    token_expiry_seconds: float | None
    seconds_since_last_request: float | None
    jobs_running: int
    jobs_stalled: int


@dataclass(frozen=True, slots=True)
class OrgState:
    slug: str
    users: int
    users_deactivated: int
    teams: int
    tokens_active: int


async def fleet_state(conn: Connection) -> FleetState:
    row = await conn.fetchrow(QUERIES["monitoring_fleet_state"], STALL_AFTER.total_seconds())
    assert row is not None
    return FleetState(
        users=row["users"],
        users_deactivated=row["users_deactivated"],
        teams=row["teams"],
        memberships=row["memberships"],
        tokens_active=row["tokens_active"],
        token_expiry_seconds=row["token_expiry_seconds"],
        seconds_since_last_request=row["seconds_since_last_request"],
        jobs_running=row["running"],
        jobs_stalled=row["stalled"],
    )


async def org_states(conn: Connection, limit: int) -> list[OrgState]:
    """Per-org state of the `limit` orgs with the most users."""
    rows = await conn.fetch(QUERIES["monitoring_org_state"], limit)
    return [
        OrgState(
            slug=r["slug"],
            users=r["users"],
            users_deactivated=r["users_deactivated"],
            teams=r["teams"],
            tokens_active=r["tokens_active"],
        )
        for r in rows
    ]


async def org_slug(conn: Connection, org_id: uuid.UUID) -> str | None:
    slug: str | None = await conn.fetchval(QUERIES["org_slug"], org_id)
    return slug


async def ping(conn: Connection) -> None:
    await conn.fetchval(QUERIES["ping"])

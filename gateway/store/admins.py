"""Dashboard admins, their sessions, sign-in throttling and the first-run setup code.

Passwords arrive here already hashed (argon2id, by the dashboard, off the event
loop); session ids and setup codes arrive as SHA-256 digests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from gateway.dbtypes import Connection
from gateway.sql import QUERIES
from gateway.store import parse_ip
from gateway.store.orgs import Org


class AdminExists(Exception):
    """An admin with this email already exists (in any org)."""


@dataclass(frozen=True, slots=True)
class Admin:
    org_id: uuid.UUID
    id: uuid.UUID
    email: str
    created_at: datetime
    disabled_at: datetime | None
    last_sign_in_at: datetime | None
    org_slug: str | None = None


@dataclass(frozen=True, slots=True)
class SignInCandidate:
    org_id: uuid.UUID
    id: uuid.UUID
    password_hash: str
    disabled: bool


@dataclass(frozen=True, slots=True)
class Session:
    org_id: uuid.UUID
    admin_id: uuid.UUID
    csrf_token: str
    created_at: datetime
    email: str
    org_slug: str
    org_name: str


@dataclass(frozen=True, slots=True)
class SignInFailures:
    account: int
    ip: int


def fold_email(email: str) -> str:
    return email.strip().casefold()


async def create_admin(
    conn: Connection, org_id: uuid.UUID, email: str, password_hash: str
) -> Admin:
    try:
        row = await conn.fetchrow(
            QUERIES["insert_admin"], org_id, email.strip(), fold_email(email), password_hash
        )
    except asyncpg.UniqueViolationError:
        raise AdminExists(email) from None
    assert row is not None
    return Admin(**dict(row))


async def list_admins(conn: Connection, org_id: uuid.UUID | None = None) -> list[Admin]:
    return [Admin(**dict(r)) for r in await conn.fetch(QUERIES["list_admins"], org_id)]


async def any_admin(conn: Connection) -> bool:
    return bool(await conn.fetchval(QUERIES["count_admins"]))


async def disable_admin(conn: Connection, email: str) -> Admin | None:
    """Disable by email and end the admin's sessions; None if there is no such admin."""
    row = await conn.fetchrow(QUERIES["disable_admin"], fold_email(email))
    return None if row is None else Admin(**dict(row))


async def find_for_sign_in(conn: Connection, email: str) -> SignInCandidate | None:
    row = await conn.fetchrow(QUERIES["find_admin_for_sign_in"], fold_email(email))
    if row is None:
        return None
    return SignInCandidate(
        org_id=row["org_id"],
        id=row["id"],
        password_hash=row["password_hash"],
        disabled=row["disabled_at"] is not None,
    )


async def update_password_hash(
    conn: Connection, org_id: uuid.UUID, admin_id: uuid.UUID, password_hash: str
) -> None:
    await conn.execute(QUERIES["update_admin_password_hash"], org_id, admin_id, password_hash)


def _ip_key(client_ip: str | None) -> str | None:
    ip = parse_ip(client_ip)
    return None if ip is None else str(ip)


async def recent_sign_in_failures(
    conn: Connection, email: str, client_ip: str | None, *, window_seconds: int
) -> SignInFailures:
    row = await conn.fetchrow(
        QUERIES["signin_failures"], fold_email(email), _ip_key(client_ip), float(window_seconds)
    )
    assert row is not None
    return SignInFailures(account=row["account_failures"], ip=row["ip_failures"])


async def record_sign_in_failure(
    conn: Connection, email: str, client_ip: str | None, *, window_seconds: int
) -> None:
    await conn.execute(
        QUERIES["record_signin_failure"],
        fold_email(email),
        _ip_key(client_ip),
        float(window_seconds),
    )


async def start_session(
    conn: Connection,
    *,
    org_id: uuid.UUID,
    admin_id: uuid.UUID,
    email: str,
    session_digest: bytes,
    csrf_token: str,
    idle_seconds: int,
    absolute_seconds: int,
) -> None:
    await conn.execute(
        QUERIES["start_session"],
        org_id,
        admin_id,
        session_digest,
        csrf_token,
        fold_email(email),
        float(idle_seconds),
        float(absolute_seconds),
    )


async def resume_session(
    conn: Connection, session_digest: bytes, *, idle_seconds: int, absolute_seconds: int
) -> Session | None:
    row = await conn.fetchrow(
        QUERIES["resume_session"], session_digest, float(idle_seconds), float(absolute_seconds)
    )
    if row is None:
        return None
    return Session(
        org_id=row["org_id"],
        admin_id=row["admin_id"],
        csrf_token=row["csrf_token"],
        created_at=row["created_at"],
        email=row["email"],
        org_slug=row["org_slug"],
        org_name=row["org_name"],
    )


async def end_session(conn: Connection, session_digest: bytes) -> None:
    await conn.execute(QUERIES["end_session"], session_digest)


async def add_setup_code(conn: Connection, code_digest: bytes) -> None:
    await conn.execute(QUERIES["insert_setup_code"], code_digest)


async def setup_code_valid(conn: Connection, code_digest: bytes) -> bool:
    return bool(await conn.fetchval(QUERIES["setup_code_exists"], code_digest))


async def use_setup_code(conn: Connection, code_digest: bytes) -> bool:
    """Consume every setup code if this one is valid; True when it was."""
    return bool(await conn.fetch(QUERIES["use_setup_code"], code_digest))


async def get_org(conn: Connection, org_id: uuid.UUID) -> Org | None:
    row = await conn.fetchrow(QUERIES["get_org_by_id"], org_id)
    return None if row is None else Org(**dict(row))

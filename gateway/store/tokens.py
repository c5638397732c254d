"""SCIM tokens: only their SHA-256 digest and last four characters are stored."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.dbtypes import Connection
from gateway.sql import QUERIES
from gateway.store import parse_ip
from gateway.tokens import AuthFailure, PresentedToken, generate_token, token_digest


@dataclass(frozen=True, slots=True)
class TokenInfo:
    org_id: uuid.UUID
    id: uuid.UUID
    last4: str
    note: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    last_used_user_agent: str | None = None
    last_used_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Authenticated:
    org_id: uuid.UUID
    token_id: uuid.UUID
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """A known token that may no longer be used: its org still sees the request."""

    failure: AuthFailure
    org_id: uuid.UUID
    token_id: uuid.UUID


class TooManyTokens(Exception):
    """The org already has its allowed number of active tokens."""

    def __init__(self, active: list[TokenInfo]) -> None:
        super().__init__(f"{len(active)} active tokens")
        self.active = active


async def create_token(
    conn: Connection,
    org_id: uuid.UUID,
    *,
    expires_in: timedelta | None = None,
    note: str | None = None,
    max_active: int | None = None,
) -> tuple[str, TokenInfo]:
    """Make a token for the org; the plain token is returned here and nowhere else.

    With `max_active`, refuse (TooManyTokens) when the org already has that many
    usable tokens; the org row is locked so that two creations cannot both pass.
    """
    token = generate_token()
    async with conn.transaction():
        if max_active is not None:
            await conn.execute(QUERIES["lock_org"], org_id)
            active = [
                TokenInfo(**dict(row)) for row in await conn.fetch(QUERIES["active_tokens"], org_id)
            ]
            if len(active) >= max_active:
                raise TooManyTokens(active)
        row = await conn.fetchrow(
            QUERIES["insert_token"], org_id, token_digest(token), token[-4:], note, expires_in
        )
    assert row is not None
    return token, TokenInfo(**dict(row))


async def list_tokens(conn: Connection, org_id: uuid.UUID) -> list[TokenInfo]:
    return [TokenInfo(**dict(row)) for row in await conn.fetch(QUERIES["list_tokens"], org_id)]


async def revoke_token(conn: Connection, token_id: uuid.UUID) -> TokenInfo | None:
    """Revoke by id; effective on the token's next request. None if there is no such token."""
    org_id = await conn.fetchval(QUERIES["find_token_org"], token_id)
    if org_id is None:
        return None
    row = await conn.fetchrow(QUERIES["revoke_token"], org_id, token_id)
    if row is None:
        return None
    tokens = {t.id: t for t in await list_tokens(conn, org_id)}
    return tokens[token_id]


async def authenticate(
    conn: Connection,
    token: PresentedToken,
    *,
    user_agent: str | None,
    client_ip: str | None,
    touch_seconds: int,
) -> Authenticated | Refused | AuthFailure:
    digest = token.digest
    row = await conn.fetchrow(
        QUERIES["authenticate_token"], digest, float(touch_seconds), user_agent, parse_ip(client_ip)
    )
    # The index lookup found the row; compare in constant time all the same.
    if row is None or not hmac.compare_digest(bytes(row["digest"]), digest):
        return AuthFailure.UNKNOWN
    if row["revoked_at"] is not None:
        return Refused(AuthFailure.REVOKED, row["org_id"], row["id"])
    if not row["usable"]:
        return Refused(AuthFailure.EXPIRED, row["org_id"], row["id"])
    return Authenticated(org_id=row["org_id"], token_id=row["id"], expires_at=row["expires_at"])


async def token_owner(
    conn: Connection, token: PresentedToken
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(org id, token id) of a token presented in a broken form, to file its 401."""
    digest = token.digest
    row = await conn.fetchrow(QUERIES["token_owner"], digest)
    if row is None or not hmac.compare_digest(bytes(row["digest"]), digest):
        return None
    return row["org_id"], row["id"]


async def get_org_token(
    conn: Connection, org_id: uuid.UUID, token_id: uuid.UUID
) -> TokenInfo | None:
    """One of the org's tokens; None for another org's token or an unknown id."""
    row = await conn.fetchrow(QUERIES["get_org_token"], org_id, token_id)
    return None if row is None else TokenInfo(**dict(row))


async def revoke_org_token(
    conn: Connection, org_id: uuid.UUID, token_id: uuid.UUID
) -> TokenInfo | None:
    """Revoke one of the org's tokens; None for another org's token or an unknown id."""
    if await conn.fetchrow(QUERIES["revoke_token"], org_id, token_id) is None:
        return None
    return await get_org_token(conn, org_id, token_id)

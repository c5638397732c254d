"""What each SCIM token authenticated as, a moment ago, in this process.

Authentication is a round trip per request otherwise (issue 12): Okta sends a
first sync as thousands of requests a second with one token. A result is reused
for at most `fresh_seconds` (under a second), so a revoke made on any worker or
replica refuses the token everywhere within that time, with no messages between
processes; a token's own expiry is checked on every use.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.store.tokens import Authenticated, Refused
from gateway.tokens import AuthFailure

AuthResult = Authenticated | Refused | AuthFailure


@dataclass(frozen=True, slots=True)
class _Checked:
    result: AuthResult
    at: float  # time.monotonic() of the database's answer


class TokenCache:
    def __init__(self, fresh_seconds: float, size: int = 10_000) -> None:
        self._fresh = fresh_seconds
        self._size = size
        self._checked: dict[bytes, _Checked] = {}

    def fresh(self, digest: bytes) -> AuthResult | None:
        """The database's answer for this token if it is recent enough to reuse."""
        checked = self._checked.get(digest)
        if checked is None or time.monotonic() - checked.at >= self._fresh:
            return None
        result = checked.result
        if (
            isinstance(result, Authenticated)
            and result.expires_at is not None
            and result.expires_at <= datetime.now(UTC)
        ):
            return None  # expired since: the database says so, and records the refusal
        return result

    def put(self, digest: bytes, result: AuthResult) -> None:
        if len(self._checked) >= self._size and digest not in self._checked:
            self._checked.clear()  # rare (that many tokens in a second): start over
        self._checked[digest] = _Checked(result, time.monotonic())

    def owner(self, digest: bytes) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(org, token) this token last belonged to, however old: only to file the
        log row of a request that failed because the database was away, never to
        authorize."""
        checked = self._checked.get(digest)
        if checked is None or isinstance(checked.result, AuthFailure):
            return None
        return checked.result.org_id, checked.result.token_id

"""SCIM bearer tokens: how they are made, shown and checked before any database lookup.

A token is ``schscim_`` + 43 base62 characters (256 random bits) + a 6-character
base62 CRC-32 of everything before it. The fixed prefix makes a leaked token easy
to recognise (and to grep for); the checksum lets the gateway tell a truncated or
mistyped token from a revoked one without a query, so the admin gets the right
advice. Only the SHA-256 digest is ever stored.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import zlib
from dataclasses import dataclass

PREFIX = "schscim_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_LEN = 43  # 62**43 > 2**256
_CHECK_LEN = 6  # 62**6 > 2**32
TOKEN_LENGTH = len(PREFIX) + _BODY_LEN + _CHECK_LEN

# Anything token-shaped, for scrubbing logs and stored bodies. The bare prefix is
# not a secret: help texts name it ("those start with 'schscim_'").
TOKEN_PATTERN = re.compile(re.escape(PREFIX) + r"[0-9A-Za-z]+")

# Characters that copy-paste from web pages and chat tools leave around a token.
_WRAPPERS = "\"'`<>\u00a0\u200b\u200c\u200d\u2060\ufeff"


def _base62(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def _checksum(text: str) -> str:
    return _base62(zlib.crc32(text.encode("ascii")), _CHECK_LEN)


def generate_token() -> str:
    body = _base62(int.from_bytes(secrets.token_bytes(32), "big"), _BODY_LEN)
    head = PREFIX + body
    return head + _checksum(head)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def display_token(last4: str) -> str:
    """How a token is shown after creation: never more than its prefix and last 4."""
    return f"{PREFIX}…{last4}"


class AuthFailure(enum.Enum):
    """Why a SCIM request was not authenticated. Each has its own advice."""

    MISSING = "missing"
    BASIC_SCHEME = "basic_scheme"
    DOUBLE_PREFIX = "double_prefix"
    WRAPPED = "wrapped"
    NOT_A_SCIM_TOKEN = "not_a_scim_token"
    TRUNCATED = "truncated"
    TOO_LONG = "too_long"
    MISTYPED = "mistyped"
    UNKNOWN = "unknown"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class PresentedToken:
    """A token that passed every check that needs no database."""

    value: str

    @property
    def digest(self) -> bytes:
        return token_digest(self.value)


def check_authorization(header: str | None) -> PresentedToken | AuthFailure:
    """Classify an ``Authorization`` header without touching the database.

    Accepts ``Bearer <token>`` and the raw ``<token>`` of Okta's "HTTP Header" mode.
    """
    if header is None or not header.strip():
        return AuthFailure.MISSING
    value = header
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "basic":
        return AuthFailure.BASIC_SCHEME
    if scheme.lower() == "bearer":
        value = rest
        if value.lstrip().lower().startswith("bearer"):
            return AuthFailure.DOUBLE_PREFIX
    if any(c in value for c in " \t" + _WRAPPERS):
        # Our token with something around or inside it, or some other credential.
        return AuthFailure.WRAPPED if PREFIX in value else AuthFailure.NOT_A_SCIM_TOKEN
    return check_token(value)


_EMBEDDED = re.compile(re.escape(PREFIX) + f"[0-9A-Za-z]{{{_BODY_LEN + _CHECK_LEN}}}")


def find_token(header: str | None) -> PresentedToken | None:
    """A well-formed token inside a broken header, for filing its 401 under the token's org."""
    for match in _EMBEDDED.finditer(header or ""):
        found = check_token(match[0])
        if isinstance(found, PresentedToken):
            return found
    return None


def check_token(value: str) -> PresentedToken | AuthFailure:
    if not value.startswith(PREFIX):
        # A token cut short inside its own prefix is still a truncated token.
        if len(value) >= 3 and PREFIX.startswith(value):
            return AuthFailure.TRUNCATED
        return AuthFailure.NOT_A_SCIM_TOKEN
    if len(value) < TOKEN_LENGTH:
        return AuthFailure.TRUNCATED
    if len(value) > TOKEN_LENGTH:
        return AuthFailure.TOO_LONG
    head, check = value[:-_CHECK_LEN], value[-_CHECK_LEN:]
    if not value.isascii() or not secrets.compare_digest(_checksum(head), check):
        return AuthFailure.MISTYPED
    return PresentedToken(value)

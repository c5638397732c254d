"""Passwords, session cookies, CSRF checks and security headers of the dashboard."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from functools import partial

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.settings import Settings

# argon2-cffi's defaults are RFC 9106's second recommended option: argon2id,
# t=3, m=64 MiB, p=4.
_HASHER = PasswordHasher()
# Verified against when the email is unknown, so that answer takes as long as a
# wrong password (the hash of a random password nobody knows).
_UNKNOWN_ACCOUNT_HASH = "$argon2id$v=19$m=65536,t=3,p=4$FaRjNrLJMcbx2gYXjs3Gxw$Qon9ArC0UXLx3AFPjkwVg4k50ehbEe7rtCWqPWbn7mw"
MIN_PASSWORD_LENGTH = 12

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it Chrome sends `Origin: null` on same-origin form posts.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 1024:
        return "Use at most 1024 characters."
    return None


async def hash_password(password: str) -> str:
    """argon2id, in a worker thread: a hash takes tens of milliseconds of CPU."""
    return await asyncio.get_running_loop().run_in_executor(None, _HASHER.hash, password)


async def verify_password(password_hash: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, a rehash to store when the parameters changed), in a worker thread.

    A None hash (unknown email) is verified against a hash nobody knows, so both
    answers cost the same.
    """
    return await asyncio.get_running_loop().run_in_executor(
        None, partial(_verify, password_hash, password)
    )


def _verify(password_hash: str | None, password: str) -> tuple[bool, str | None]:
    try:
        _HASHER.verify(password_hash or _UNKNOWN_ACCOUNT_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if password_hash is None:
        return False, None
    if _HASHER.check_needs_rehash(password_hash):
        return True, _HASHER.hash(password)
    return True, None


def new_secret() -> str:
    """A random value for a session id, a CSRF token or a setup code (256 bits)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def same_secret(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())


def session_cookie_name(settings: Settings) -> str:
    # Browsers refuse `__Host-` and `Secure` cookies over plain HTTP; local
    # development on a loopback address gets a plain name instead.
    return "scimgw_session" if settings.local_http else "__Host-scimgw_session"


def presignin_cookie_name(settings: Settings) -> str:
    """The double-submit CSRF cookie of the sign-in and setup forms (no session yet)."""
    return "scimgw_csrf" if settings.local_http else "__Host-scimgw_csrf"


def set_cookie(
    response: web.StreamResponse, settings: Settings, name: str, value: str, *, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=not settings.local_http,
        httponly=True,
        samesite="Lax",
    )


def delete_cookie(response: web.StreamResponse, settings: Settings, name: str) -> None:
    response.del_cookie(
        name, path="/", secure=not settings.local_http, httponly=True, samesite="Lax"
    )


def cross_site_refusal(request: web.Request, settings: Settings) -> str | None:
    """Why a state-changing request looks cross-site, or None.

    Browsers send Origin on every POST and Sec-Fetch-Site on every request; a
    request with neither comes from a non-browser client, which the CSRF token
    alone protects.
    """
    origin = request.headers.get("Origin")
    if origin is not None:
        allowed = {f"{request.scheme}://{request.host}", settings.public_origin}
        if origin not in allowed:
            return f"Origin {origin} is not this dashboard's"
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {fetch_site}"
    return None

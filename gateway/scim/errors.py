"""SCIM errors (RFC 7644 §3.12) and the one middleware that renders every failure."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import jsontext
from gateway.appkeys import LOG_ENTRY, SCIM_CONTEXT, SETTINGS
from gateway.db import connection_broken, is_transient
from gateway.provlog.codes import default_code
from gateway.provlog.redaction import redact_text
from gateway.scim.wrong_url import diagnose_wrong_url

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_MEDIA_TYPE = "application/scim+json"

logger = logging.getLogger(__name__)


class ScimError(Exception):
    """A failure the client caused or can act on, rendered as a SCIM Error body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        scim_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
        args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = dict(headers or {})
        # The provisioning log's reason code (gateway.provlog.codes) and its arguments.
        self.code = code or default_code(status, scim_type)
        self.args_for_log = dict(args or {})

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body


def printable(text: str) -> str:
    """`text` safe to send and store: NULs and unpaired surrogates as escapes."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


# A body larger than this is written a slice at a time: written whole, a team of
# 100,000 members (17 MB) is copied twice on the event loop (joined to the
# headers, then into the transport's buffer); slices go out as the socket drains.
_WRITE_SLICE_BYTES = 256 * 1024


class ScimResponse(web.Response):
    """A response whose large body is sent in slices (SCIM routes answer no HEAD)."""

    async def write_eof(self, data: bytes = b"") -> None:
        body = self.body
        if data or not isinstance(body, bytes) or len(body) <= _WRITE_SLICE_BYTES:
            await super().write_eof(data)
            return
        view = memoryview(body)
        for start in range(0, len(body), _WRITE_SLICE_BYTES):
            await self.write(view[start : start + _WRITE_SLICE_BYTES])
        await web.StreamResponse.write_eof(self)


def scim_response(
    body: Mapping[str, Any] | list[Any],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return ScimResponse(
        body=jsontext.dumps_bytes(body),
        status=status,
        headers=headers,
        content_type=SCIM_MEDIA_TYPE,
        charset="utf-8",
    )


def error_response(error: ScimError) -> web.Response:
    return scim_response(error.to_body(), status=error.status, headers=error.headers)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> ScimError:
    settings = request.config_dict[SETTINGS]
    if exc.status == 404:
        return ScimError(
            404,
            diagnose_wrong_url(request.path, settings),
            code="wrong_base_url",
            args={
                "base_url": settings.scim_base_url,
                "path": redact_text(request.path)[:200],
                "trailing_slash": "//" in request.path or request.path.endswith("/"),
            },
        )
    if exc.status == 405:
        allowed = sorted(getattr(exc, "allowed_methods", ()) or ())
        return ScimError(
            405,
            f"{request.method} is not supported on {request.path}; allowed: {', '.join(allowed)}",
            headers={"Allow": ",".join(allowed)},
        )
    if exc.status == 413:
        return ScimError(
            413,
            f"The request body is larger than this server accepts ({settings.max_body_bytes} bytes). "
            "Send fewer members per request, or raise SCIM_MAX_BODY_BYTES.",
        )
    return ScimError(exc.status, exc.reason)


@web.middleware
async def scim_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into an application/scim+json Error; never leak internals."""
    try:
        return await handler(request)
    except ScimError as exc:
        error = exc
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _from_http_exception(request, exc)
    except Exception as exc:
        entry = request.get(LOG_ENTRY)
        request_id = entry.request_id if entry else "unknown"
        if is_transient(exc):
            # The database is away or busy: the client should come back, not report a bug.
            logger.warning("SCIM request %s: database unavailable (%r)", request_id, exc)
            context = request.get(SCIM_CONTEXT)
            conn = context.conn if context else None
            if conn is not None and connection_broken(exc):
                # Back in the pool it would fail the next request too. (A connection
                # asyncpg already took back refuses every call: nothing to do then.)
                with contextlib.suppress(asyncpg.InterfaceError):
                    conn.terminate()
            seconds = request.config_dict[SETTINGS].retry_after_seconds
            error = ScimError(
                503,
                "The service is temporarily unavailable (the database did not answer in time); "
                f"retry in {seconds} seconds. The request id is {request_id}.",
                headers={"Retry-After": str(seconds)},
            )
        else:
            logger.exception("Unhandled error in SCIM request %s", request_id)
            error = ScimError(
                500,
                f"Internal server error. The request id is {request_id}; it is safe to retry.",
            )
    # Details echo paths and values; a token pasted into a URL must not come back out.
    error.detail = printable(redact_text(error.detail))
    entry = request.get(LOG_ENTRY)
    if entry is not None:
        entry.fail(
            error.code, error.args_for_log or None, scim_type=error.scim_type, detail=error.detail
        )
    return error_response(error)

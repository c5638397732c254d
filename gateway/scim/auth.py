"""Bearer-token authentication for every SCIM request; the token decides the org."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.appkeys import LOG_ENTRY, METRICS, SETTINGS, TOKEN_CACHE
from gateway.scim.context import CONNECTION_ERRORS, request_conn
from gateway.scim.errors import ScimError
from gateway.store import tokens as token_store
from gateway.tokens import PREFIX, AuthFailure, check_authorization, find_token

_WHERE = "Settings → SCIM"
_PASTE = "paste it in Okta → Provisioning → Integration, then click Test API Credentials"

AUTH_FAILURE_DETAILS: dict[AuthFailure, str] = {
    AuthFailure.MISSING: (
        "No Authorization header. Generate a token in " + _WHERE + " and " + _PASTE + "."
    ),
    AuthFailure.BASIC_SCHEME: (
        "Basic authentication is not supported. Choose 'HTTP Header' or 'OAuth Bearer Token' "
        "in Okta and paste a SCIM token from " + _WHERE + "."
    ),
    AuthFailure.DOUBLE_PREFIX: (
        "The Authorization header reads 'Bearer Bearer …': the word Bearer was pasted together "
        "with the token. Paste only the token; Okta adds 'Bearer' itself."
    ),
    AuthFailure.WRAPPED: (
        "The token has quotes, spaces or invisible characters around or inside it. Copy it "
        "again from " + _WHERE + " and paste it without them."
    ),
    AuthFailure.NOT_A_SCIM_TOKEN: (
        f"This is not a SecureCodingHub SCIM token (those start with '{PREFIX}'). Generate one in "
        + _WHERE
        + " and "
        + _PASTE
        + "."
    ),
    AuthFailure.TRUNCATED: (
        "The token looks truncated — copy it again from " + _WHERE + ". If it is no longer shown "
        "there, generate a new one and " + _PASTE + "."
    ),
    AuthFailure.TOO_LONG: (
        "The token has extra characters at the end — copy it again from " + _WHERE + "."
    ),
    AuthFailure.MISTYPED: (
        "The token looks mistyped: its checksum does not match, so a character was changed. Copy "
        "it again from " + _WHERE + " rather than typing it."
    ),
    AuthFailure.UNKNOWN: (
        "This SCIM token is not known here: it was deleted, or it belongs to another "
        "SecureCodingHub environment. Generate a token in " + _WHERE + " and " + _PASTE + "."
    ),
    AuthFailure.REVOKED: (
        "This SCIM token was revoked. Generate a new one in " + _WHERE + " and " + _PASTE + "."
    ),
    AuthFailure.EXPIRED: (
        "This SCIM token has expired. Generate a new one in " + _WHERE + " and " + _PASTE + "."
    ),
}


_BROKEN_FORMS = frozenset({AuthFailure.DOUBLE_PREFIX, AuthFailure.WRAPPED, AuthFailure.TOO_LONG})


async def authenticate_request(request: web.Request) -> AuthFailure | None:
    """Authenticate and record the org and token on the log entry; return why not, if not."""
    entry = request[LOG_ENTRY]
    header = request.headers.get("Authorization")
    presented = check_authorization(header)
    if isinstance(presented, AuthFailure):
        # A valid token in a broken form ('Bearer Bearer …', quoted, trailing
        # characters) still names its org, whose admin must see these 401s.
        inside = find_token(header) if presented in _BROKEN_FORMS else None
        if inside is not None:
            owner = await token_store.token_owner(await request_conn(request), inside)
            if owner is not None:
                entry.org_id, entry.token_id = owner
        return presented
    cache = request.config_dict[TOKEN_CACHE]
    result = cache.fresh(presented.digest)
    if result is None:
        try:
            conn = await request_conn(request)
            result = await token_store.authenticate(
                conn,
                presented,
                user_agent=entry.user_agent,
                client_ip=entry.client_ip,
                touch_seconds=request.config_dict[SETTINGS].token_touch_seconds,
            )
        except CONNECTION_ERRORS:
            # The database is away: file the failure under the org this token had.
            entry.org_id, entry.token_id = cache.owner(presented.digest) or (None, None)
            raise
        cache.put(presented.digest, result)
    if isinstance(result, AuthFailure):
        return result
    entry.org_id = result.org_id
    entry.token_id = result.token_id
    if isinstance(result, token_store.Refused):
        # A revoked or expired token still names its org, whose admin must see these 401s.
        return result.failure
    return None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    failure = await authenticate_request(request)
    if isinstance(request.match_info.http_exception, web.HTTPNotFound):
        # A wrong URL: answer with base-URL help whatever the token; a valid token
        # only files the log row under its org so the admin sees it.
        return await handler(request)
    if failure is not None:
        request[LOG_ENTRY].auth_failure = failure.value
        request.config_dict[METRICS].auth_failures.labels(reason=failure.value).inc()
        raise ScimError(
            401,
            AUTH_FAILURE_DETAILS[failure],
            headers={"WWW-Authenticate": 'Bearer realm="SCIM"'},
        )
    return await handler(request)

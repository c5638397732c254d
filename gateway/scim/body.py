"""Read a SCIM request body: media type, size, JSON syntax and nesting, all checked."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.appkeys import LOG_ENTRY
from gateway.scim.errors import ScimError

ACCEPTED_MEDIA_TYPES = frozenset({"application/scim+json", "application/json"})
# SCIM resources nest at most 4 deep (PatchOp → Operations → value → emails → item);
# 32 leaves room for custom extensions and stops stack-exhaustion payloads.
MAX_DEPTH = 32


_JSON_KIND = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a SCIM 400/413/415 error."""
    if request.content_type not in ACCEPTED_MEDIA_TYPES:
        sent = request.headers.get("Content-Type") or "no Content-Type"
        raise ScimError(
            415,
            f"Unsupported media type {sent!r}: send the body as application/scim+json "
            "(or application/json), encoded as UTF-8.",
        )
    charset = request.charset
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise ScimError(
            415, f"Unsupported charset {charset!r}: send application/scim+json encoded as UTF-8."
        )
    raw = await request.read()  # raises 413 past client_max_size
    request[LOG_ENTRY].request_body = raw
    if not raw.strip():
        raise ScimError(
            400, "The request body is empty; send a JSON object.", scim_type="invalidSyntax"
        )
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ScimError(
            400, f"The body is not valid UTF-8 (byte {exc.start}).", scim_type="invalidSyntax"
        ) from None
    except json.JSONDecodeError as exc:
        raise ScimError(
            400,
            f"The body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
            scim_type="invalidSyntax",
        ) from None
    except (ValueError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ScimError(
            400, f"The body is not valid JSON: {reason}.", scim_type="invalidSyntax"
        ) from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise ScimError(
            400,
            f"The JSON body nests deeper than {MAX_DEPTH} levels; SCIM resources never need that.",
            scim_type="invalidSyntax",
        )
    if not isinstance(value, dict):
        raise ScimError(
            400,
            f"The body must be a JSON object, not {_JSON_KIND.get(type(value), 'a value')}.",
            scim_type="invalidSyntax",
        )
    request[LOG_ENTRY].request_json = value
    return value

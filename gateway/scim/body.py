"""Read a SCIM request body: media type, encoding, size, JSON syntax, nesting, keys, all checked.

Two parsers must never disagree on a body, so a key repeated in one object
(also in another case: SCIM attribute names are case-insensitive) is refused
rather than resolved "last wins". Text PostgreSQL cannot store (NUL, unpaired
surrogates) is refused here, naming where it is, before anything else sees it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from gateway.appkeys import LOG_ENTRY
from gateway.scim.errors import ScimError, printable
from gateway.scim.limits import MAX_OBJECT_KEYS
from gateway.scim.resource import storable

ACCEPTED_MEDIA_TYPES = frozenset({"application/scim+json", "application/json"})
# SCIM resources nest at most 4 deep (PatchOp → Operations → value → emails → item);
# 32 leaves room for custom extensions and stops stack-exhaustion payloads.
MAX_DEPTH = 32
# Bodies larger than this are parsed (and their members checked) on a worker
# thread; the checks run Python code per object, so the event loop gets the GIL
# back every few milliseconds instead of waiting for the whole body.
OFF_LOOP_BYTES = 256 * 1024

# The only ways a NUL or an unpaired surrogate gets into a string parsed from
# strict UTF-8 JSON are these escapes; a hit (rare) triggers the walk that names
# the place.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|d[89a-f][0-9a-f]{2})", re.IGNORECASE)

_JSON_KIND = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}

T = TypeVar("T")


class _DuplicateKey(ValueError):
    def __init__(self, first: str, second: str) -> None:
        super().__init__(first)
        self.first = first
        self.second = second


class _TooManyKeys(ValueError):
    def __init__(self, count: int) -> None:
        super().__init__(str(count))
        self.count = count


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) > MAX_OBJECT_KEYS:
        raise _TooManyKeys(len(pairs))
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key, key)
            seen.add(key)
    if len(pairs) > 1:
        lowered: dict[str, str] = {}
        for key in obj:
            other = lowered.setdefault(key.lower(), key)
            if other is not key:
                raise _DuplicateKey(other, key)
    return obj


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


def unstorable_at(value: Any) -> tuple[str, str] | None:
    """(where, "key" or "value") of the first string PostgreSQL cannot store, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                path = f"{where}.{key}" if where else key
                if not storable(key):
                    return (where or "the top level", "key")
                stack.append((child, path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
        elif isinstance(item, str) and not storable(item):
            return (where or "the body", "value")
    return None


def shown(text: str) -> str:
    """`text` for an error message: NULs and lone surrogates as escapes, at most 64 characters."""
    safe = printable(text)
    return safe if len(safe) <= 64 else safe[:61] + "…"


def check_content_encoding(request: web.Request) -> None:
    """SCIM clients send plain bodies; a compressed (or mislabelled) one is 415, never parsed."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise ScimError(
            415,
            f"Unsupported Content-Encoding {shown(encoding)!r}: send the body uncompressed "
            "(no Content-Encoding header).",
        )


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(
            raw.decode("utf-8"), parse_constant=_reject_constant, object_pairs_hook=_object
        )
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
    except _DuplicateKey as exc:
        also = "" if exc.first == exc.second else f" (as {shown(exc.second)!r} too)"
        raise ScimError(
            400,
            f"The key {shown(exc.first)!r} appears more than once in one JSON object{also}; "
            "attribute names are case-insensitive, so send each once.",
            scim_type="invalidSyntax",
        ) from None
    except _TooManyKeys as exc:
        raise ScimError(
            400,
            f"A JSON object in the body has {exc.count} keys; at most {MAX_OBJECT_KEYS} are "
            "accepted per object.",
            scim_type="invalidValue",
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
    if _SUSPECT_ESCAPE.search(raw) and (found := unstorable_at(value)) is not None:
        where, kind = found
        if kind == "key":
            raise ScimError(
                400,
                f"A key in {shown(where)} contains a NUL character or an unpaired surrogate "
                "(\\u0000, \\ud800-\\udfff); remove it.",
                scim_type="invalidSyntax",
            )
        raise ScimError(
            400,
            f"Attribute '{shown(where)}' contains a NUL character or an unpaired surrogate "
            "(\\u0000, \\ud800-\\udfff); remove it from the value in Okta.",
            scim_type="invalidValue",
        )
    return value


async def off_loop_if(large: bool, work: Callable[[], T]) -> T:
    """Run CPU work on a worker thread when it is large, else here and now."""
    return await asyncio.to_thread(work) if large else work()


def large_body(request: web.Request) -> bool:
    return (request.content_length or 0) > OFF_LOOP_BYTES


async def off_loop(request: web.Request, work: Callable[[], T]) -> T:
    """Run CPU work for a request's body on a worker thread when the body is large."""
    return await off_loop_if(large_body(request), work)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a SCIM 400/413/415 error."""
    if request.content_type not in ACCEPTED_MEDIA_TYPES:
        sent = request.headers.get("Content-Type") or "no Content-Type"
        raise ScimError(
            415,
            f"Unsupported media type {shown(sent)!r}: send the body as application/scim+json "
            "(or application/json), encoded as UTF-8.",
        )
    charset = request.charset
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise ScimError(
            415,
            f"Unsupported charset {shown(charset)!r}: send application/scim+json encoded as UTF-8.",
        )
    check_content_encoding(request)
    raw = await request.read()  # raises 413 past client_max_size
    request[LOG_ENTRY].request_body = raw
    if not raw.strip():
        raise ScimError(
            400, "The request body is empty; send a JSON object.", scim_type="invalidSyntax"
        )
    if len(raw) > OFF_LOOP_BYTES:
        value = await asyncio.to_thread(_parse, raw)
    else:
        value = _parse(raw)
    request[LOG_ENTRY].request_json = value
    return value

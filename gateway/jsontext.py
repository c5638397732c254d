"""JSON text of large values without holding the interpreter for long.

A worker thread keeps the event loop free only while it runs Python code: one
call into the C encoder or decoder holds the GIL until it returns, and over a
100,000-member team that is a quarter of a second in which the loop cannot run.
So long lists are encoded a slice at a time, and large texts are decoded with a
hook that returns to Python for every object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import orjson

# Items encoded by one call into the C encoder (about a millisecond's worth).
SLICE = 1000
# Texts longer than this are decoded with a per-object hook.
_HOOKED_DECODE_CHARACTERS = 64 * 1024

_std_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _encode_bytes(value: Any) -> bytes:
    """Compact JSON as UTF-8: orjson, or the standard encoder for what orjson refuses
    (an integer beyond 64 bits; a lone surrogate, which then fails as it always did)."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one
        return _std_encode(value).encode()


def _encode(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _std_encode(value)


_CONTAINERS = (list, dict)


def _holds_containers(value: Any) -> bool:
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, list):
        return False
    return any(isinstance(item, _CONTAINERS) for item in value)


def _large(value: Any) -> bool:
    """Whether one C call over `value` could take long: it holds a long list.

    The items of a list are taken to be alike in shape (the gateway's own
    documents are): when the first holds no list or object, none is looked into.
    A loop over a stack, not recursion over generators: it runs over every page of
    users the gateway answers (a fifth of the time of encoding one, before).
    """
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            for item in current.values():
                if isinstance(item, _CONTAINERS):
                    pending.append(item)
        elif isinstance(current, list):
            if len(current) > SLICE:
                return True
            if current and _holds_containers(current[0]):
                pending.extend(current)
    return False


def _append(value: Any, parts: list[str]) -> None:
    if not _large(value):
        parts.append(_encode(value))
    elif isinstance(value, dict):
        separator = "{"
        for key, item in value.items():
            parts.append(separator + _encode(key) + ":")
            separator = ","
            _append(item, parts)
        parts.append("}")
    else:
        parts.append("[")
        for start in range(0, len(value), SLICE):
            chunk = value[start : start + SLICE]
            if start:
                parts.append(",")
            if _large(chunk):
                for index, item in enumerate(chunk):
                    if index:
                        parts.append(",")
                    _append(item, parts)
            else:
                parts.append(_encode(chunk)[1:-1])
        parts.append("]")


def encoded_parts(value: Any) -> list[str]:
    """The JSON of `value` in the pieces encoded by one call each."""
    parts: list[str] = []
    _append(value, parts)
    return parts


def dumps(value: Any) -> str:
    """Compact JSON (UTF-8 text, not ASCII-escaped), as `json.dumps` would write it."""
    return "".join(encoded_parts(value))


def dumps_bytes(value: Any) -> bytes:
    """`dumps` as UTF-8 bytes, encoded part by part."""
    if not _large(value):
        return _encode_bytes(value)
    return b"".join(p.encode() for p in encoded_parts(value))


def string_array(strings: Iterable[str]) -> str:
    """A JSON array of strings that need no escaping (ids)."""
    text = '","'.join(strings)
    return f'["{text}"]' if text else "[]"


def key_object(keys: Iterable[str]) -> str:
    """A JSON object {"<key>": 0, …} of keys that need no escaping (ids)."""
    return "{" + ",".join(f'"{key}":0' for key in keys) + "}"


# orjson reads an integer beyond 64 bits as a float, silently; the standard decoder
# keeps it exact. A text with a run of this many digits is read by the standard one.
_LONG_NUMBER = re.compile(r"[0-9]{19}")


def loads_stored(text: str) -> Any:
    """JSON text that PostgreSQL stored (a jsonb column, read as text) as `json.loads`
    reads it: by orjson, several times faster over a page of users, except where orjson
    would read it otherwise (a number beyond 64 bits) or refuse it."""
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _same(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def loads(text: str) -> Any:
    """`json.loads`; a large text returns to Python for every object it holds."""
    if len(text) > _HOOKED_DECODE_CHARACTERS:
        return json.loads(text, object_hook=_same)
    return json.loads(text)

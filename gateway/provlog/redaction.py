"""Remove secrets from what the provisioning log stores, and cut it to size."""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.tokens import TOKEN_PATTERN

REDACTED = "[redacted]"
# Attribute names whose values are secrets wherever they appear (compared case-insensitively).
SECRET_KEYS = frozenset({"password", "token", "secret", "authorization"})

# For bodies that are not valid JSON: a "password": "..." pair, escapes included.
_SECRET_PAIR = re.compile(
    r'("(?:password|token|secret|authorization)"\s*:\s*)"(?:[^"\\]|\\.)*"?', re.IGNORECASE
)


def redact_text(text: str) -> str:
    return TOKEN_PATTERN.sub(REDACTED, text)


def scrub_json_text(text: str) -> str:
    """Secrets out of JSON text without parsing it: "password": "…" pairs and tokens."""
    return redact_text(_SECRET_PAIR.sub(lambda m: m[1] + f'"{REDACTED}"', text))


def redact_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (REDACTED if key.lower() in SECRET_KEYS else redact_value(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redacted_body(body: bytes | str | Any, limit: int, *, parsed: bool = False) -> str | None:
    """The body as stored in the log: secrets removed, at most `limit` characters.

    `body` is raw bytes/str as received, or (with parsed=True) a decoded JSON value.
    """
    if parsed:
        text = json.dumps(redact_value(body), ensure_ascii=False, separators=(",", ":"))
    else:
        if not body:
            return None
        raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        try:
            text = json.dumps(
                redact_value(json.loads(raw)), ensure_ascii=False, separators=(",", ":")
            )
        except (ValueError, RecursionError):
            text = scrub_json_text(raw)
    if len(text) > limit:
        # Cut, then scrub again: the cut may have split a token's prefix from its body.
        text = redact_text(text[:limit]) + f"…[cut, {len(text)} characters in all]"
    return text

"""How the gateway's HTTP server runs: protocol options shared by `serve` and the tests."""

from __future__ import annotations

from typing import Any

from gateway.logs import AccessLogger
from gateway.settings import Settings


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiohttp's `AppRunner` (and the test server)."""
    return {
        # SCIM clients send plain bodies. Decompressing would let a small request
        # become a large one, and an undecodable body would fail inside the HTTP
        # parser, before any SCIM error handling; the SCIM app answers 415 instead.
        "auto_decompress": False,
        # Ours: JSON lines without query values, tokens or emails.
        "access_log_class": AccessLogger,
    }

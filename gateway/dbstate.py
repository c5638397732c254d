"""Whether the gateway may serve: the database schema was checked, and it is not draining."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DatabaseState:
    """Set by the pool's background check (ready) and by SIGTERM handling (draining)."""

    ready: bool = False
    draining: bool = False

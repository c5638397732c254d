"""Keyset positions of list walks in progress."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Position:
    """The last row served before a startIndex: its `seq`, and the org's count of
    inserts and deletes of the type (`changes`) when it was served (None for a
    filtered walk, whose page query counts instead)."""

    seq: int
    changes: int | None


class PageCursors:
    """Where the next page of a walk probably starts, so an import pages by keyset.

    Okta imports with startIndex 1, 101, 201, …; after serving a page we remember
    the last row's `seq` under the next startIndex. An entry is a candidate, never
    trusted: the page query uses it only if it still lands at that startIndex in
    the current order (see `gateway.scim.listing.Window`), so a stale entry costs
    an OFFSET, never a wrong page. A miss (another process served the previous
    page, or the client jumped) is OFFSET too. Per process, bounded, short-lived.
    """

    def __init__(self, size: int = 10_000, ttl_seconds: float = 900.0) -> None:
        self._size = size
        self._ttl = ttl_seconds
        self._entries: OrderedDict[tuple[Any, ...], tuple[Position, float]] = OrderedDict()

    @staticmethod
    def key(
        org_id: uuid.UUID, resource: str, filter_text: str | None, start_index: int
    ) -> tuple[Any, ...]:
        return (org_id, resource, filter_text or "", start_index)

    def get(self, key: tuple[Any, ...]) -> Position | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        position, expires = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return position

    def put(self, key: tuple[Any, ...], position: Position) -> None:
        self._entries[key] = (position, time.monotonic() + self._ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

"""Keyset positions of list walks in progress."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from typing import Any


class PageCursors:
    """Where the next page of a walk starts, so an import pages by keyset, not OFFSET.

    Okta imports with startIndex 1, 101, 201, …; after serving a page we remember
    the last row's `seq` under the next startIndex. A hit makes page N cost what
    page 1 costs and keeps each resource exactly once even if rows are added or
    deleted mid-walk; a miss (another process served the previous page, or the
    client jumped) falls back to OFFSET. Per process, bounded, short-lived.
    """

    def __init__(self, size: int = 10_000, ttl_seconds: float = 900.0) -> None:
        self._size = size
        self._ttl = ttl_seconds
        self._entries: OrderedDict[tuple[Any, ...], tuple[int, float]] = OrderedDict()

    @staticmethod
    def key(
        org_id: uuid.UUID, resource: str, filter_text: str | None, start_index: int
    ) -> tuple[Any, ...]:
        return (org_id, resource, filter_text or "", start_index)

    def get(self, key: tuple[Any, ...]) -> int | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        seq, expires = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return seq

    def put(self, key: tuple[Any, ...], seq: int) -> None:
        self._entries[key] = (seq, time.monotonic() + self._ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

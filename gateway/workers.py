"""`serve --workers N`: N gateway processes on one port, and the metrics they share.

Each worker is a fresh Python process (`python -m gateway.worker`) running the
same aiohttp runner as a single process. The supervisor listens on the port and
hands each accepted connection to the next worker in turn, over a Unix socket
pair (SCM_RIGHTS), as Node's cluster module does by default. Not SO_REUSEPORT
(aiohttp's `reuse_port`, used before): the kernel hashes each connection to a
worker, and Okta keeps a handful of keep-alive connections for a whole sync, so
all 8 of a first sync's connections often landed on one worker, which then did
the work of two on one core (10,000 users: 19.3 s with 8 on one worker, 15.1 s
with 5 and 3). Round-robin gives 4 and 4. Chosen over gunicorn's aiohttp worker
because it adds no dependency and no second configuration surface, and because
fresh processes (rather than forks of a process that has already imported
prometheus-client) start with `PROMETHEUS_MULTIPROC_DIR` set, which
prometheus-client reads once, at import. A worker that cannot take a connection
at once (its channel is full, or it died) is skipped for the next one.

This supervisor owns prometheus-client's multiprocess directory,
`GATEWAY_DATA_DIR/prometheus-multiproc/`: emptied at start (values of an earlier
run must not be added to this one's), a dead worker's live gauges removed
(`mark_process_dead`) before it is replaced, removed at exit. A lock file keeps a
second `serve` from sharing it.

Signals: SIGTERM or SIGINT stops every worker gracefully (each finishes its
requests in flight, up to `SHUTDOWN_SECONDS`) and then exits. A worker that dies
is replaced; one that dies within `CRASH_WINDOW_SECONDS` of its start
`MAX_QUICK_CRASHES` times in a row stops the whole server (a worker that cannot
start will not start by retrying).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from prometheus_client.multiprocess import mark_process_dead

from gateway.settings import Settings

logger = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 30.0
CRASH_WINDOW_SECONDS = 10.0
MAX_QUICK_CRASHES = 5
_POLL_SECONDS = 0.2
MULTIPROC_DIR_NAME = "prometheus-multiproc"


class WorkersError(Exception):
    """The workers cannot be started (or kept running)."""


# Connections the listener queues before the supervisor accepts them.
_BACKLOG = 1024
_ACCEPT_RETRY_SECONDS = 0.1


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    started: float
    # The supervisor's end of the Unix socket pair connections are handed over on.
    channel: socket.socket


@contextlib.contextmanager
def multiprocess_dir(data_dir: Path) -> Iterator[Path]:
    """prometheus-client's directory for this server: locked, empty at start, gone at exit."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir / f"{MULTIPROC_DIR_NAME}.lock"
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkersError(
                f"another `serve` uses {data_dir}; give each its own GATEWAY_DATA_DIR"
            ) from None
        directory = data_dir / MULTIPROC_DIR_NAME
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def worker_environment(settings: Settings, directory: Path) -> dict[str, str]:
    """What a worker reads with `Settings.from_env`: the supervisor's settings, resolved."""
    assert settings.database_url is not None
    env = dict(os.environ)
    env.update(
        DATABASE_URL=settings.database_url,
        GATEWAY_HOST=settings.host,
        GATEWAY_PORT=str(settings.port),
        GATEWAY_DATA_DIR=str(settings.data_dir),
        PROMETHEUS_MULTIPROC_DIR=str(directory),
        GATEWAY_SUPERVISOR_PID=str(os.getpid()),
    )
    if settings.database_read_url is not None:
        env["DATABASE_READ_URL"] = settings.database_read_url
    if settings.metrics_listen is None:
        env["METRICS_LISTEN"] = "off"
    else:
        host, port = settings.metrics_listen
        env["METRICS_LISTEN"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return env


def _spawn(env: dict[str, str]) -> _Worker:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.worker"],
            env={**env, "GATEWAY_HANDOFF_FD": str(theirs.fileno())},
            pass_fds=(theirs.fileno(),),
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    ours.setblocking(False)
    return _Worker(process=process, started=time.monotonic(), channel=ours)


def _listen(host: str, port: int) -> socket.socket:
    """The one listening socket of all workers."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(_BACKLOG)
    except OSError as exc:
        listener.close()
        raise WorkersError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    listener.setblocking(False)
    return listener


class _Dispatcher:
    """Accepts connections and hands each to the next worker in turn."""

    def __init__(self, listener: socket.socket, workers: list[_Worker]) -> None:
        self.listener = listener
        self.workers = workers
        self.turn = 0

    def accept_all(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: leave it queued, try again shortly
                logger.error("cannot accept a connection: %s", exc)
                time.sleep(_ACCEPT_RETRY_SECONDS)  # the listener stays readable: no busy loop
                return
            with connection:
                self._hand_over(connection)

    def _hand_over(self, connection: socket.socket) -> None:
        for _ in range(len(self.workers)):
            worker = self.workers[self.turn % len(self.workers)]
            self.turn += 1
            try:
                socket.send_fds(worker.channel, [b"c"], [connection.fileno()])
                return
            except (BlockingIOError, InterruptedError, BrokenPipeError, ConnectionResetError):
                continue  # busy or gone: the next worker takes it
        logger.error("no worker could take a connection; it is closed")


def run_workers(settings: Settings, count: int) -> int:
    """Run `count` workers until SIGTERM or SIGINT; returns the exit status."""
    if count < 1:
        raise WorkersError("--workers must be at least 1")
    if settings.port == 0:
        raise WorkersError("--port 0 (any free port) needs --workers 1: workers share one port")
    stop_signal: list[int] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_signal.append(signum)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with (
            multiprocess_dir(settings.data_dir) as directory,
            _listen(settings.host, settings.port) as listener,
        ):
            env = worker_environment(settings, directory)
            workers = [_spawn(env) for _ in range(count)]
            logger.info(
                "serving with %d workers (pids %s) on %s:%d",
                count,
                ", ".join(str(w.process.pid) for w in workers),
                settings.host,
                settings.port,
            )
            # The limits are each process's own (README: "Several workers").
            logger.info(
                "each worker has its own pool of up to %d database connections (%d in all), "
                "per-token rate limits (%g/s, burst %d) and org shares (%d connections)",
                settings.db_pool_max_size,
                count * settings.db_pool_max_size,
                settings.rate_limit_per_second,
                settings.rate_limit_burst,
                settings.org_connection_share,
            )
            dispatcher = _Dispatcher(listener, workers)
            status = _supervise(dispatcher, env, directory, stop_signal)
            _signal_all(workers)
            if status == 0:
                # The workers answer /readyz with 503 while they still serve, so a
                # load balancer takes them out; connections keep being dealt meanwhile.
                _dispatch_for(dispatcher, settings.shutdown_drain_seconds)
            listener.close()  # connections not yet accepted are refused from here on
            _wait_all(workers, directory)
            return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(
    dispatcher: _Dispatcher, env: dict[str, str], directory: Path, stop_signal: list[int]
) -> int:
    workers = dispatcher.workers
    quick_crashes = 0
    checked = time.monotonic()
    with selectors.DefaultSelector() as selector:
        selector.register(dispatcher.listener, selectors.EVENT_READ)
        while not stop_signal:
            if selector.select(_POLL_SECONDS):
                dispatcher.accept_all()
            if time.monotonic() - checked < _POLL_SECONDS:
                continue
            checked = time.monotonic()
            for index, worker in enumerate(workers):
                code = worker.process.poll()
                if code is None:
                    continue
                worker.channel.close()
                mark_process_dead(worker.process.pid, str(directory))  # type: ignore[no-untyped-call]
                lived = time.monotonic() - worker.started
                quick_crashes = quick_crashes + 1 if lived < CRASH_WINDOW_SECONDS else 0
                if quick_crashes >= MAX_QUICK_CRASHES:
                    logger.error(
                        "workers keep exiting right after they start (last status %s); stopping",
                        code,
                    )
                    return 1
                logger.warning(
                    "worker %d exited with status %s after %.0f s; starting another",
                    worker.process.pid,
                    code,
                    lived,
                )
                workers[index] = _spawn(env)
    logger.info("signal %d: stopping %d workers", stop_signal[0], len(workers))
    return 0


def _dispatch_for(dispatcher: _Dispatcher, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with selectors.DefaultSelector() as selector:
        selector.register(dispatcher.listener, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(left):
                dispatcher.accept_all()


def _signal_all(workers: list[_Worker]) -> None:
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)


def _wait_all(workers: list[_Worker], directory: Path) -> None:
    deadline = time.monotonic() + SHUTDOWN_SECONDS + 5
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.error("worker %d did not stop in time; killing it", worker.process.pid)
            worker.process.kill()
            worker.process.wait()
        mark_process_dead(worker.process.pid, str(directory))  # type: ignore[no-untyped-call]

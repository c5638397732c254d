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
prometheus-client reads once, at import. A worker is dealt connections once it
writes HANDOFF_READY on its channel (set up and reading it); at start none are
accepted until every worker has (at most _STARTUP_SECONDS). A worker that cannot
take a connection at once (its channel is full, or it died) is skipped for the
next one. On SIGTERM the supervisor deals for SHUTDOWN_DRAIN_SECONDS more, then
closes its listeners and shuts each channel for writing: each worker serves what
it was handed until end of file, then stops.

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
import errno
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

from gateway.server import HANDOFF_READY
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
# Connections accepted from one listener per wake, so that a flood of them cannot
# keep the supervisor from its other duties.
_ACCEPT_BATCH = 64
# After running out of file descriptors (or memory), wait this long before accepting
# again; the listener stays readable meanwhile.
_ACCEPT_RETRY_SECONDS = 0.1
# At start, connections wait until every worker is ready, at most this long.
_STARTUP_SECONDS = 10.0
# accept() errors that concern one connection only (it was reset before it was taken).
_ACCEPT_ONE_GONE = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    started: float
    # The supervisor's end of the Unix socket pair connections are handed over on.
    channel: socket.socket
    # The worker wrote HANDOFF_READY on its channel: it is set up and reads the channel.
    ready: bool = False


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


@contextlib.contextmanager
def _listening(host: str, port: int) -> Iterator[list[socket.socket]]:
    """The listening sockets of all workers: one per address `host` resolves to, IPv6
    ones IPv6 only, as aiohttp's TCPSite binds them for `--workers 1`."""
    listeners: list[socket.socket] = []
    try:
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            for family, kind, proto, _, address in dict.fromkeys(found):
                listener = socket.socket(family, kind, proto)
                listeners.append(listener)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                listener.bind(address)
                listener.listen(_BACKLOG)
                listener.setblocking(False)
        except OSError as exc:
            raise WorkersError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        yield listeners
    finally:
        for listener in listeners:
            listener.close()


class _Dispatcher:
    """Accepts connections and hands each to the next ready worker in turn.

    Watches the listeners and every worker's channel: a worker is dealt
    connections once it has written HANDOFF_READY (before that, only when no worker is
    ready: the connection then waits for it rather than being refused), and no more
    once its channel is closed (it died).
    """

    def __init__(self, listeners: list[socket.socket], workers: list[_Worker]) -> None:
        self.listeners = listeners
        self.workers = workers
        self.turn = 0
        self.selector = selectors.DefaultSelector()
        self.accepting = False
        for worker in workers:
            self.watch(worker)

    def accept_when_ready(self, deadline: float) -> None:
        """Start taking connections once every worker is ready (or at `deadline`):
        until then they wait in the listeners' backlogs, so that clients that connect
        at start (Okta keeps its connections for a whole sync) are spread over all
        workers, not all dealt to the first one ready."""
        if self.accepting or (
            time.monotonic() < deadline and not all(w.ready for w in self.workers)
        ):
            return
        self.accepting = True
        for listener in self.listeners:
            self.selector.register(listener, selectors.EVENT_READ, None)

    def watch(self, worker: _Worker) -> None:
        self.selector.register(worker.channel, selectors.EVENT_READ, worker)

    def forget(self, worker: _Worker) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.channel)
        worker.channel.close()

    def wait(self, seconds: float) -> None:
        """Deal what arrives within `seconds` (less if something arrives sooner)."""
        for key, _ in self.selector.select(max(0.0, seconds)):
            if key.data is None:
                self._accept(key.fileobj)  # type: ignore[arg-type]
            else:
                self._heard(key.data)

    def stop_listening(self) -> None:
        """Refuse new connections; tell every worker that nothing more will come
        (end of file on its channel, after what was already handed over)."""
        for listener in self.listeners:
            if self.accepting:
                self.selector.unregister(listener)
            listener.close()
        self.accepting = False
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.channel.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for worker in self.workers:
            self.forget(worker)
        self.selector.close()

    def _heard(self, worker: _Worker) -> None:
        try:
            said = worker.channel.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            said = b""
        if HANDOFF_READY in said:
            worker.ready = True
        elif not said:  # the worker is gone; the supervisor replaces it
            worker.ready = False
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.channel)

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                connection, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _ACCEPT_ONE_GONE:
                    continue
                logger.error("cannot accept a connection: %s", exc)
                time.sleep(_ACCEPT_RETRY_SECONDS)  # EMFILE and the like: no busy loop
                return
            with connection:
                self._hand_over(connection)

    def _hand_over(self, connection: socket.socket) -> None:
        candidates = [w for w in self.workers if w.ready] or self.workers
        for _ in range(len(candidates)):
            worker = candidates[self.turn % len(candidates)]
            self.turn += 1
            try:
                socket.send_fds(worker.channel, [b"c"], [connection.fileno()])
                return
            except OSError as exc:  # full, gone, or out of descriptors: the next one
                logger.debug("worker %d cannot take a connection: %s", worker.process.pid, exc)
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
            _listening(settings.host, settings.port) as listeners,
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
            dispatcher = _Dispatcher(listeners, workers)
            try:
                status = _supervise(dispatcher, env, directory, stop_signal)
                _signal_all(workers)
                # The workers answer /readyz with 503 while they still serve, so a
                # load balancer takes them out; connections keep being dealt meanwhile.
                deadline = time.monotonic() + settings.shutdown_drain_seconds
                while status == 0 and (left := deadline - time.monotonic()) > 0:
                    dispatcher.wait(left)
            finally:
                _signal_all(workers)
                # New connections are refused from here on; each worker serves what it
                # was handed, reads the end of its channel, and stops.
                dispatcher.stop_listening()
                _wait_all(workers, directory)
                dispatcher.close()
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
    accept_by = checked + _STARTUP_SECONDS
    while not stop_signal:
        dispatcher.wait(_POLL_SECONDS)
        dispatcher.accept_when_ready(accept_by)
        if time.monotonic() - checked < _POLL_SECONDS:
            continue
        checked = time.monotonic()
        for index, worker in enumerate(workers):
            code = worker.process.poll()
            if code is None:
                continue
            dispatcher.forget(worker)
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
            dispatcher.watch(workers[index])
    logger.info("signal %d: stopping %d workers", stop_signal[0], len(workers))
    return 0


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

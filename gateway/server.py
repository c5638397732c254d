"""How the gateway's HTTP server runs: protocol options, and a graceful stop on SIGTERM.

On SIGTERM (or SIGINT) `/readyz` answers 503 first, for SHUTDOWN_DRAIN_SECONDS,
while requests are still served, so a load balancer stops sending new ones;
then the listener closes, requests in flight get up to SHUTDOWN_TIMEOUT_SECONDS
to finish, and only then does the pool close. Every worker process does the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from typing import Any

from aiohttp import web

from gateway.appkeys import DB_STATE
from gateway.logs import AccessLogger
from gateway.settings import Settings

logger = logging.getLogger(__name__)

# A full garbage collection walks every live object holding the GIL, so the
# event loop stands still throughout. With Python's default thresholds (700, 10,
# 10) a team PUT of 100,000 members (a million objects) set off six, up to 164 ms
# each. Young collections every 50,000 allocations instead make full ones a
# hundred times rarer (none during that PUT); what is alive once the server is
# set up (modules, the app) is frozen out of them.
GC_THRESHOLDS = (50_000, 10, 10)


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiohttp's `AppRunner` (and the test server)."""
    return {
        # SCIM clients send plain bodies. Decompressing would let a small request
        # become a large one, and an undecodable body would fail inside the HTTP
        # parser, before any SCIM error handling; the SCIM app answers 415 instead.
        "auto_decompress": False,
        # Ours: JSON lines without query values, tokens or emails.
        "access_log_class": AccessLogger,
        # aiohttp closes a connection that has not delivered a complete request
        # this long after connecting or after its previous response: slow headers
        # and idle connections cannot pile up. (Bodies: SCIM_BODY_TIMEOUT_SECONDS.)
        "keepalive_timeout": settings.header_timeout,
    }


# A worker's channel carries one connection per message, and one read never joins
# messages that carry descriptors (Linux), so one slot would do; room for a few more.
_HANDOFF_FDS = 4
# After its drain a worker reads what was handed over until the supervisor closes the
# channel (it does once it stops listening), at most this long.
_HANDOFF_END_SECONDS = 10.0
# What a worker writes on its channel once it serves: only then does the supervisor
# (gateway/workers.py) deal it connections.
HANDOFF_READY = b"r"


def _take_connections(
    channel: socket.socket,
    runner: web.AppRunner,
    tasks: set[asyncio.Task[Any]],
    ended: asyncio.Event,
) -> None:
    """Serve the connections the supervisor handed over (gateway/workers.py)."""
    loop = asyncio.get_running_loop()
    try:
        message, fds, flags, _ = socket.recv_fds(channel, _HANDOFF_FDS, _HANDOFF_FDS)
    except (BlockingIOError, InterruptedError):
        return
    if flags & socket.MSG_CTRUNC:  # out of descriptors: the kernel closed the rest
        logger.error("connections handed over were lost: this worker is out of descriptors")
    if not message:  # the supervisor is done (or gone; _exit_when_orphaned stops us)
        loop.remove_reader(channel.fileno())
        ended.set()
        return
    assert runner.server is not None
    for fd in fds:
        task = loop.create_task(_serve_connection(runner.server, socket.socket(fileno=fd)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _serve_connection(server: web.Server, connection: socket.socket) -> None:
    try:
        await asyncio.get_running_loop().connect_accepted_socket(server, connection)
    except OSError as exc:  # the client left while the connection was handed over
        logger.info("a handed-over connection was gone: %s", exc)
        connection.close()


async def serve(
    app: web.Application,
    settings: Settings,
    stop: asyncio.Event | None = None,
    *,
    handoff: socket.socket | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop`), then drain and close as described above.

    With `handoff` (a worker of `serve --workers N`) the worker does not listen: the
    supervisor accepts connections and hands them over on that Unix socket.
    """
    stop = stop or asyncio.Event()
    gc.set_threshold(*GC_THRESHOLDS)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout,
        **server_options(settings),
    )
    await runner.setup()
    gc.freeze()
    loop = asyncio.get_running_loop()
    handed_over: set[asyncio.Task[Any]] = set()
    handoff_ended = asyncio.Event()
    try:
        if handoff is None:
            await web.TCPSite(runner, settings.host, settings.port).start()
        else:
            handoff.setblocking(False)
            loop.add_reader(
                handoff.fileno(), _take_connections, handoff, runner, handed_over, handoff_ended
            )
            with contextlib.suppress(OSError):  # a gone supervisor: we stop soon anyway
                handoff.send(HANDOFF_READY)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        logger.info("serving on %s:%s", settings.host, settings.port)
        await stop.wait()
        logger.info(
            "stopping: /readyz answers 503 for %gs, then requests in flight get up to %gs",
            settings.shutdown_drain_seconds,
            settings.shutdown_timeout,
        )
        app[DB_STATE].draining = True
        await asyncio.sleep(settings.shutdown_drain_seconds)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if handoff is not None:
            # Whatever was handed over before the supervisor stopped listening is served.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_HANDOFF_END_SECONDS):
                    await handoff_ended.wait()
            loop.remove_reader(handoff.fileno())
            await asyncio.gather(*handed_over, return_exceptions=True)
        await runner.cleanup()
        logger.info("stopped")

"""One worker of `serve --workers N` (see gateway/workers.py); started by the supervisor only.

Reads its settings from the environment the supervisor prepared, and serves the
connections the supervisor hands over on the Unix socket GATEWAY_HANDOFF_FD names
(it does not listen itself). Exits when its supervisor is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator

import uvloop
from aiohttp import web

from gateway.app import create_app
from gateway.logs import configure_logging
from gateway.server import serve
from gateway.settings import Settings

PARENT_CHECK_SECONDS = 1.0


async def _exit_when_orphaned(supervisor_pid: int) -> None:
    # Polling: nothing signals a changed parent pid.
    while os.getppid() == supervisor_pid:  # noqa: ASYNC110
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    logging.getLogger(__name__).error("supervisor %d is gone; stopping", supervisor_pid)
    # serve() turns SIGTERM into a graceful shutdown.
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    configure_logging()
    settings = Settings.from_env()
    supervisor_pid = int(os.environ.get("GATEWAY_SUPERVISOR_PID", "0"))
    app = create_app(settings)

    async def watch_supervisor(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_exit_when_orphaned(supervisor_pid))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    if supervisor_pid:
        app.cleanup_ctx.append(watch_supervisor)
    handoff = socket.socket(fileno=int(os.environ["GATEWAY_HANDOFF_FD"]))
    # The same runner as a single process: SIGTERM drains (/readyz 503), then stops.
    uvloop.run(serve(app, settings, handoff=handoff))


if __name__ == "__main__":
    main()

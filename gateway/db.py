"""The asyncpg pool: created in `cleanup_ctx`, one per application."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Generator
from types import TracebackType
from typing import Any, Protocol

import asyncpg
from aiohttp import web
from asyncpg.connection import LoggedQuery
from asyncpg.pool import PoolAcquireContext

from gateway.appkeys import DB_POOL, METRICS, SETTINGS
from gateway.dbtypes import Connection
from gateway.migrate import check_schema


async def _no_reset(conn: Connection) -> None:
    """Skip asyncpg's reset query on release.

    The default reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) costs a
    round trip on every release. Pool connections here never take session
    locks, LISTEN, or SET; transactions are always closed by `async with`.
    """


class PoolObserver(Protocol):
    """Told how long each connection took to get and which statements failed (the metrics)."""

    def acquire_started(self) -> None: ...

    def acquire_finished(self, seconds: float, error: BaseException | None) -> None: ...

    def query_failed(self, error: BaseException) -> None: ...


class _ObservedAcquire:
    """`pool.acquire()` that reports its wait to the observer; used like asyncpg's."""

    __slots__ = ("_inner", "_observer")

    def __init__(self, inner: PoolAcquireContext, observer: PoolObserver) -> None:
        self._inner = inner
        self._observer = observer

    async def _timed(self, acquire: Any) -> Any:
        self._observer.acquire_started()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await acquire
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._observer.acquire_finished(time.perf_counter() - started, error)

    async def __aenter__(self) -> Any:
        return await self._timed(self._inner.__aenter__())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._timed(self._inner).__await__()


class ObservedPool(asyncpg.Pool):
    """An asyncpg pool whose acquires and failed statements are reported to an observer."""

    def __init__(self, *args: Any, observer: PoolObserver, **kwargs: Any) -> None:
        self.observer = observer
        super().__init__(*args, **kwargs)

    def acquire(self, *, timeout: float | None = None) -> Any:
        return _ObservedAcquire(super().acquire(timeout=timeout), self.observer)


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    observer: PoolObserver | None = None,
) -> asyncpg.Pool:
    options: dict[str, Any] = {
        "min_size": min_size,
        "max_size": max_size,
        "reset": _no_reset,
    }
    if observer is None:
        pool = await asyncpg.create_pool(dsn, **options, server_settings=_SERVER_SETTINGS)
        assert pool is not None
        return pool

    def report_failure(query: LoggedQuery) -> None:
        if query.exception is not None:
            observer.query_failed(query.exception)

    async def watch(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(report_failure)

    observed = ObservedPool(
        dsn,
        observer=observer,
        init=watch,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        server_settings=_SERVER_SETTINGS,
        **options,
    )
    await observed
    return observed


# Short statements only; a stuck one must not hold Okta past its 60 s timeout.
# asyncpg prepares every statement; after five runs PostgreSQL may switch to a
# generic plan that ignores the values, and for skewed data (a team of 100,000
# among teams of 10, an email GIN lookup under LIMIT) that plan scans. Planning
# with the values costs tenths of a millisecond.
_SERVER_SETTINGS = {
    "application_name": "scim-gateway",
    "statement_timeout": "30s",
    "plan_cache_mode": "force_custom_plan",
}


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.database_url is None:
        raise RuntimeError(
            "create_app needs settings.database_url; the CLI starts the embedded server"
        )
    pool = await create_pool(
        settings.database_url,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        observer=app[METRICS],
    )
    try:
        async with pool.acquire() as conn:
            await check_schema(conn)
    except BaseException:
        await pool.close()
        raise
    app[DB_POOL] = pool
    yield
    try:
        # Bounded: a connection left mid-operation by a dead server must not hang shutdown.
        await asyncio.wait_for(pool.close(), timeout=10)
    except TimeoutError:
        pool.terminate()

"""The asyncpg pool: created in `cleanup_ctx`, one per application, without waiting for the database.

The gateway starts whether or not PostgreSQL answers: the pool connects on
demand, a background task checks the schema as soon as the database is there,
and until then (and whenever a request meets a transient database failure) SCIM
answers 503 with Retry-After instead of 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Generator
from types import TracebackType
from typing import Any, Protocol

import asyncpg
from aiohttp import web
from asyncpg.connection import LoggedQuery
from asyncpg.pool import PoolAcquireContext

from gateway.appkeys import DB_POOL, DB_READ_POOL, DB_STATE, METRICS, SETTINGS
from gateway.dbstate import DatabaseState
from gateway.dbtypes import Connection
from gateway.migrate import MigrationError, check_schema
from gateway.settings import Settings

logger = logging.getLogger(__name__)

# SQLSTATEs worth a retry by the client: the server is (re)starting or shutting
# down, the connection broke, a lock wait or statement ran out of time, or the
# transaction lost a serialization or deadlock race.
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53")  # connection exception, insufficient resources
_TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "57P04", "57P05"}
)
# Lost a race: worth retrying the whole request at once, a bounded number of times.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# Transient, but the connection itself is fine: busy, locked, raced, cancelled.
_CONNECTION_FINE = frozenset({"40001", "40P01", "55P03", "57014"})


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is the database being away or busy, not a bug or bad input."""
    if isinstance(exc, OSError | TimeoutError):
        return True  # refused, reset, unreachable; pool acquire or connect timeout
    if isinstance(exc, asyncpg.PostgresError):
        state = _sqlstate(exc)
        return state in _TRANSIENT_SQLSTATES or state[:2] in _TRANSIENT_SQLSTATE_CLASSES
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        return "closed" in text or "closing" in text
    # asyncpg's protocol state after the server dropped an idle connection
    # ("cannot switch to state …; another operation is in progress").
    return isinstance(exc, asyncpg.exceptions.InternalClientError)


def connection_broken(exc: BaseException) -> bool:
    """Whether the connection that met this transient failure must not be used again."""
    if isinstance(exc, asyncpg.PostgresError):
        state = _sqlstate(exc)
        return state not in _CONNECTION_FINE and not state.startswith("53")
    return not isinstance(exc, TimeoutError)


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.PostgresError) and (
        str(getattr(exc, "sqlstate", "")) in RETRYABLE_SQLSTATES
    )


class GatewayPool(asyncpg.Pool):
    """asyncpg's pool with a default acquire timeout (no caller waits unbounded for a
    connection) whose acquire waits are reported to an observer (the metrics)."""

    def __init__(
        self,
        *args: Any,
        acquire_timeout: float,
        observer: PoolObserver | None = None,
        **kwargs: Any,
    ) -> None:
        self.observer = observer
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        # The bound is applied around asyncpg's acquire, not passed to it: asyncpg
        # applies a timeout through wait_for, a task of its own on every acquire.
        return _BoundedAcquire(
            super().acquire(timeout=None),
            self.acquire_timeout if timeout is None else timeout,
            self.observer,
        )


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


class _BoundedAcquire:
    """`pool.acquire()` bounded in time, reporting its wait to the observer, if any;
    used like asyncpg's."""

    __slots__ = ("_inner", "_observer", "_timeout")

    def __init__(
        self, inner: PoolAcquireContext, timeout: float | None, observer: PoolObserver | None
    ) -> None:
        self._inner = inner
        self._timeout = timeout
        self._observer = observer

    async def _bounded(self, acquire: Any) -> Any:
        observer = self._observer
        if observer is None:
            async with asyncio.timeout(self._timeout):
                return await acquire
        observer.acquire_started()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            async with asyncio.timeout(self._timeout):
                return await acquire
        except BaseException as exc:
            error = exc
            raise
        finally:
            observer.acquire_finished(time.perf_counter() - started, error)

    async def __aenter__(self) -> Any:
        return await self._bounded(self._inner.__aenter__())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._bounded(self._inner).__await__()


async def create_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    settings: Settings | None = None,
    connect_now: bool = True,
    observer: PoolObserver | None = None,
) -> GatewayPool:
    """A pool; with `connect_now=False` it opens no connection until one is asked for.
    With an `observer`, acquire waits and failed statements are reported to it."""
    settings = settings or Settings()
    init = None
    if observer is not None:

        def report_failure(query: LoggedQuery) -> None:
            if query.exception is not None:
                observer.query_failed(query.exception)

        async def watch(conn: asyncpg.Connection) -> None:
            conn.add_query_logger(report_failure)

        init = watch
    pool = GatewayPool(
        dsn,
        observer=observer,
        # Without connect_now nothing connects here; `warm` opens min_size later.
        init_size=min_size if connect_now else 0,
        min_size=min_size if connect_now else 0,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        connect=None,
        setup=None,
        init=init,
        reset=_no_reset,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        acquire_timeout=settings.db_acquire_timeout,
        # asyncpg's connect timeout (default 60 s) bounds a connection attempt to a
        # host that drops packets instead of refusing.
        timeout=settings.db_connect_timeout,
        server_settings={
            "application_name": "scim-gateway",
            # Short statements only; a stuck one must not hold Okta past its 60 s timeout.
            "statement_timeout": f"{settings.db_statement_timeout_ms}ms",
            # A row another request holds locked is waited for this long, then the
            # request answers 503 with Retry-After instead of holding its connection.
            "lock_timeout": f"{settings.db_lock_timeout_ms}ms",
            # asyncpg prepares every statement, and PostgreSQL may then reuse a generic
            # plan: right for the hot statements (unique-index lookups, inserts), whose
            # re-planning cost 0.3-0.6 ms each (issue 12). The few plans that must see
            # the values (the duplicate-account email lookup under LIMIT, the job
            # bookkeeping of a log row) live in functions declared with
            # `SET plan_cache_mode = force_custom_plan` (sql/migrations).
            "plan_cache_mode": "auto",
        },
    )
    await pool
    return pool


async def warm(pool: asyncpg.Pool, count: int) -> None:
    """Open `count` connections ahead of the first requests (DB_POOL_MIN_SIZE)."""
    held = [await pool.acquire() for _ in range(min(count, pool.get_max_size()))]
    for conn in held:
        await pool.release(conn)


async def wait_for_database(
    pool: asyncpg.Pool, state: DatabaseState, interval: float, pool_min_size: int
) -> None:
    """Check the schema as soon as the database answers; then the gateway is ready."""
    reported = ""
    while True:
        try:
            async with pool.acquire() as conn:
                await check_schema(conn)
        except MigrationError as exc:
            message = f"database schema: {exc}"
        except Exception as exc:
            if not is_transient(exc):
                raise
            message = f"database not reachable yet ({type(exc).__name__}); retrying"
        else:
            state.ready = True
            logger.info("database ready")
            await warm(pool, pool_min_size)
            return
        if message != reported:
            logger.warning("%s", message)
            reported = message
        await asyncio.sleep(interval)


async def _gateway_pool(
    settings: Settings, dsn: str, *, observer: PoolObserver | None = None
) -> GatewayPool:
    """A pool of the settings' sizes that connects when first asked."""
    return await create_pool(
        dsn,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        settings=settings,
        connect_now=False,
        observer=observer,
    )


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.database_url is None:
        raise RuntimeError(
            "create_app needs settings.database_url; the CLI starts the embedded server"
        )
    pool = await _gateway_pool(settings, settings.database_url, observer=app[METRICS])
    app[DB_POOL] = pool
    state = app[DB_STATE]
    waiter = None
    try:
        async with pool.acquire() as conn:
            await check_schema(conn)
        state.ready = True
        await warm(pool, settings.db_pool_min_size)
    except Exception as exc:
        if not is_transient(exc):
            await pool.close()
            raise  # a database that answers with the wrong schema is a deployment error
        logger.warning("database not reachable (%s); serving, /readyz answers 503 until it is", exc)
        waiter = asyncio.create_task(
            wait_for_database(pool, state, settings.db_retry_interval, settings.db_pool_min_size)
        )
    yield
    if waiter is not None:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    await close_pool(pool)


async def close_pool(pool: asyncpg.Pool) -> None:
    try:
        # Bounded: a connection left mid-operation by a dead server must not hang shutdown.
        await asyncio.wait_for(pool.close(), timeout=10)
    except TimeoutError:
        pool.terminate()


async def read_pool_ctx(app: web.Application) -> AsyncIterator[None]:
    """The pool of the dashboard's read-only pages, after `pool_ctx`: a second pool on
    DATABASE_READ_URL (a replica; it connects when first asked, so a replica that is
    away delays no start-up), or the main pool itself."""
    settings = app[SETTINGS]
    if settings.database_read_url is None:
        app[DB_READ_POOL] = app[DB_POOL]
        yield
        return
    pool = await _gateway_pool(settings, settings.database_read_url)
    app[DB_READ_POOL] = pool
    yield
    await close_pool(pool)

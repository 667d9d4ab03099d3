"""Engine, connections and the two kinds of transaction every service uses.

* :meth:`Database.tenant` opens a transaction that runs as the ``engram_app`` role (no superuser, no
  BYPASSRLS) with ``engram.org_id`` set locally, so row-level security confines every statement to one
  organization even if a query forgot its ``org_id`` filter.
* :meth:`Database.system` runs as the connecting role. Only the few operations that cannot know the org
  up front use it: resolving an API key to its org, creating an organization, migrations.
* :meth:`Database.read` is a tenant transaction for read-only work (searches, lists, context). With a read
  replica (``ENGRAM_READ_DATABASE_URL``, a streaming standby of the primary) it runs there, unless the
  replica has not yet replayed the current caller's last write: then on the primary (read-your-writes).
  The API names the caller (:func:`reading_as`, its API key) and, before answering a write request, notes
  the primary's WAL position for it (:meth:`Database.wrote`); work with no caller named reads the primary.

A statement the database could not serve for a reason of its own (the connection lost because the server
crashed, restarts or shuts down, the connection refused, a statement timeout, a deadlock) leaves every
one of them as :class:`~engramdb.errors.ServiceUnavailable` (503, retry): :func:`unavailable` says which
errors those are, for the API's last-resort mapper too.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError, IntegrityError, SQLAlchemyError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

from engramdb import metrics
from engramdb.config import Settings
from engramdb.errors import Conflict, EngramError, Overloaded, ServiceUnavailable, ValidationFailed

APP_ROLE = "engram_app"
# Custom plans always: searches carry values the planner must see (the query's words decide whether the
# full-text index pays; the organization literal decides which vector index matches), and prepared
# statements would otherwise switch to a generic plan after five runs.
_TENANT_SETUP = text(
    "SELECT set_config('role', :role, true), set_config('engram.org_id', :org, true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
)
# On the replica: whether it has replayed the caller's last write (false on a server that replays nothing,
# a primary or a promoted standby: then the primary serves the read), then the tenant settings.
_REPLICA_SETUP = text(
    "SELECT coalesce(pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn), false), set_config('role', :role, true), "
    "set_config('engram.org_id', :org, true), set_config('plan_cache_mode', 'force_custom_plan', true)"
)
_UNKNOWN = 2**64 - 1  # a write position no replica reaches
WRITERS_KEPT = 10_000  # callers whose last write position is remembered (the oldest are forgotten first)
_log = logging.getLogger(__name__)
_LOST = "the database connection was lost or refused (the server may be restarting); try again shortly"
_CUT_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})  # admin shutdown, crash shutdown, cannot connect now
_CONTENTION_SQLSTATES = frozenset({"40001", "40P01", "55P03"})  # serialization failure, deadlock, lock timeout
# What a statement run outside these context managers raises; the API maps them through unavailable().
DRIVER_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError,)


_POOL_WAIT: ContextVar[float | None] = ContextVar("engram_pool_wait", default=None)
_BUSY = "every database connection is busy; try again shortly"


@contextmanager
def pool_wait(seconds: float | None) -> Iterator[None]:
    """Inside this block (an API request, and the tasks it starts), a checkout waits at most ``seconds`` for
    a free connection, then fails as :class:`~engramdb.errors.Overloaded` (503): a saturated pool sheds
    requests instead of queueing them without bound. Background work (jobs, backfill, access tracking)
    runs outside it and waits up to the pool's own timeout (30 s): it has no client waiting for it.
    ``None`` restores that timeout inside a request (work done after its answer was sent)."""
    token = _POOL_WAIT.set(seconds)
    try:
        yield
    finally:
        _POOL_WAIT.reset(token)


_READER: ContextVar[str | None] = ContextVar("engram_reader", default=None)


@contextmanager
def reading_as(reader: str | None) -> Iterator[None]:
    """Inside this block (an API request) reads are the caller ``reader``'s: :meth:`Database.read` may
    send them to the replica once it has replayed that caller's last write."""
    token = _READER.set(reader)
    try:
        yield
    finally:
        _READER.reset(token)


def in_request() -> bool:
    """Whether the current task serves a request that should be shed rather than kept waiting."""
    return _POOL_WAIT.get() is not None


class _Pool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, whose checkout timeout is the caller's (``pool_wait``) when set.

    QueuePool reads ``self._timeout`` once per checkout, synchronously, in the checking-out task's context
    (SQLAlchemy runs the checkout in a greenlet that shares it), so a property can answer per caller."""

    @property
    def _timeout(self) -> float:
        wait = _POOL_WAIT.get()
        return self._default_timeout if wait is None else wait

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._default_timeout = value

    def recreate(self) -> QueuePool:
        with pool_wait(None):  # the new pool gets the default timeout, whoever disposes of this one
            return super().recreate()


@dataclass(frozen=True)
class PoolUse:
    size: int
    checked_out: int
    overflow: int
    max_overflow: int


def sqlalchemy_url(url: str) -> str:
    """Normalise any PostgreSQL URL to the psycopg 3 dialect SQLAlchemy needs."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def resolve_url(settings: Settings) -> str:
    """The libpq URL of the database: the configured one, or the embedded server started on demand."""
    if settings.database_url is not None:
        return settings.database_url
    from engramdb.storage.embedded import start_embedded

    return start_embedded(settings.data_dir, settings.embedded_database)


def _engine(url: str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(url),
        poolclass=_Pool,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        connect_args={"options": f"-c statement_timeout={settings.db_statement_timeout_ms}"},
    )


def _lsn(text_lsn: str) -> int:
    high, _, low = text_lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass
class Database:
    engine: AsyncEngine
    url: str
    replica: AsyncEngine | None = None  # ENGRAM_READ_DATABASE_URL: a streaming standby of the primary
    # Each caller's last write: the primary's WAL position then (this process's callers).
    _written: OrderedDict[str, int] = field(default_factory=OrderedDict, repr=False)

    @classmethod
    def connect(cls, settings: Settings, *, url: str | None = None) -> Database:
        libpq_url = url or resolve_url(settings)
        replica = _engine(settings.read_database_url, settings) if settings.read_database_url else None
        return cls(engine=_engine(libpq_url, settings), url=libpq_url, replica=replica)

    @asynccontextmanager
    async def tenant(self, org_id: uuid.UUID) -> AsyncIterator[AsyncConnection]:
        async with self._begin() as conn:
            await conn.execute(_TENANT_SETUP, {"role": APP_ROLE, "org": str(org_id)})
            yield conn

    @asynccontextmanager
    async def federated(self) -> AsyncIterator[Federated]:
        """One transaction over several organizations, one at a time: as ``engram_app`` (row-level security
        on), seeing no organization until :meth:`Federated.enter` names one, and then that one only, for each
        statement until the next ``enter``. Only ``services/insights/compute.py`` may call it (a test keeps
        it so): it is the one code that reads and writes across organizations, by design."""
        async with self._begin() as conn:
            await conn.execute(_TENANT_SETUP, {"role": APP_ROLE, "org": ""})
            yield Federated(conn)

    @asynccontextmanager
    async def read(self, org_id: uuid.UUID) -> AsyncIterator[AsyncConnection]:
        """A tenant transaction that only reads: on the replica when there is one, a caller is named
        (:func:`reading_as`) and the replica has replayed that caller's last write; else on the primary.
        A replica that cannot be reached (or whose pool is busy) leaves the read to the primary too."""
        reader = _READER.get()
        if self.replica is not None and reader is not None:
            needed = self._written.get(reader, 0)
            stack = AsyncExitStack()
            try:
                conn = await stack.enter_async_context(self._begin(self.replica))
                row = (
                    await conn.execute(_REPLICA_SETUP, {"lsn": _lsn_text(needed), "role": APP_ROLE, "org": str(org_id)})
                ).one()
            except Exception as exc:
                await _close_quietly(stack)
                _log.warning("the read replica cannot serve a read (%s); the primary does", _first_line(exc))
                metrics.DB_READS.labels("primary").inc()
            else:
                if row[0]:
                    if needed and self._written.get(reader) == needed:
                        del self._written[reader]  # replayed: later reads need not check it
                    metrics.DB_READS.labels("replica").inc()
                    async with stack:
                        yield conn
                    return
                await _close_quietly(stack)
                metrics.DB_READS.labels("primary").inc()
        async with self.tenant(org_id) as conn:
            yield conn

    async def wrote(self, reader: str) -> None:
        """Note the primary's WAL position now, after a write request of ``reader``, before it is answered:
        that caller's reads go to the replica only once it has replayed this far. Nothing without a replica."""
        if self.replica is None:
            return
        try:
            async with self.autocommit() as conn:
                position = _lsn(str(await conn.scalar(text("SELECT pg_current_wal_insert_lsn()"))))
        except ServiceUnavailable:  # not known: the caller reads the primary until its next write is noted
            position = _UNKNOWN
        known = self._written.get(reader, 0)
        if position > known or known == _UNKNOWN:
            self._written[reader] = position
        self._written.move_to_end(reader)
        while len(self._written) > WRITERS_KEPT:
            self._written.popitem(last=False)

    @asynccontextmanager
    async def system(self) -> AsyncIterator[AsyncConnection]:
        async with self._begin() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """Single statements outside a transaction (one round trip each), as the connecting role."""
        try:
            conn_cm = self.engine.connect()
            conn = await conn_cm.__aenter__()
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        except Exception as exc:
            _shed(exc)
            if (detail := _refused(exc)) is not None:
                raise ServiceUnavailable(detail) from exc
            raise
        try:
            yield conn
        except BaseException as exc:
            await _close_after(conn_cm, exc)
            if (detail := unavailable(exc)) is not None:
                raise ServiceUnavailable(detail) from exc
            raise
        else:
            await conn_cm.__aexit__(None, None, None)

    @asynccontextmanager
    async def _begin(self, engine: AsyncEngine | None = None) -> AsyncIterator[AsyncConnection]:
        try:
            conn_cm = (engine or self.engine).begin()
            conn = await conn_cm.__aenter__()
        except Exception as exc:
            _shed(exc)
            if (detail := _refused(exc)) is not None:
                raise ServiceUnavailable(detail) from exc
            raise
        try:
            yield conn
        except BaseException as exc:
            await _close_after(conn_cm, exc)
            if _is_bad_value(exc):
                # The last line of defence: a value the schemas let through but Postgres refuses
                # (a NUL byte, an out-of-range number) is the caller's error, not the server's.
                raise ValidationFailed(f"a value in the request cannot be stored: {_first_line(exc)}") from exc
            if _is_race(exc):
                # A row this request relied on was deleted or created by another request meanwhile.
                raise Conflict("another request changed the same data at the same time; retry") from exc
            if (detail := unavailable(exc)) is not None:
                raise ServiceUnavailable(detail) from exc
            raise
        else:
            try:
                await conn_cm.__aexit__(None, None, None)
            except Exception as exc:  # the commit: nothing was written if the connection went meanwhile
                if (detail := unavailable(exc)) is not None:
                    raise ServiceUnavailable(detail) from exc
                raise

    def pool_use(self) -> PoolUse:
        """This process's connections: the pool's size, those lent out now, the overflow in use."""
        pool = self.engine.pool
        if not isinstance(pool, _Pool):
            return PoolUse(size=0, checked_out=0, overflow=0, max_overflow=0)
        return PoolUse(
            size=pool.size(),
            checked_out=pool.checkedout(),
            overflow=max(0, pool.overflow()),
            max_overflow=max(0, pool._max_overflow),
        )

    async def ping(self) -> None:
        async with self.system() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replica is not None:
            await self.replica.dispose()


def _lsn_text(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


async def _close_quietly(stack: AsyncExitStack) -> None:
    try:
        await stack.aclose()
    except Exception as exc:  # the connection is gone already: nothing was written on it
        _log.debug("closing a replica connection failed: %s", exc)


@dataclass
class Federated:
    """The connection of :meth:`Database.federated`, confined to the organization last entered."""

    conn: AsyncConnection

    async def enter(self, org_id: uuid.UUID) -> AsyncConnection:
        await self.conn.execute(_ENTER, {"org": str(org_id)})
        return self.conn


_ENTER = text("SELECT set_config('engram.org_id', :org, true)")


def unavailable(exc: BaseException) -> str | None:
    """What to tell the caller when ``exc``, or an error it wraps, means the database cannot serve the
    request now, through no fault of the request: a connection lost, refused or invalidated (the server
    crashed, restarts or shuts down: SQLSTATE 08xxx, 57P01-57P03), a statement timeout, a deadlock,
    serialization failure or lock timeout, a resource exhausted (53xxx), every pooled connection busy.
    None for any other error, and for an error the service raised itself."""
    import psycopg

    if isinstance(exc, EngramError):
        return None  # a service already said what went wrong (an import naming the line it refused, say)
    for err in _causes(exc):
        if isinstance(err, DisconnectionError) or (isinstance(err, DBAPIError) and err.connection_invalidated):
            return _LOST
        if isinstance(err, PoolTimeout):
            return _BUSY
        if isinstance(err, psycopg.InterfaceError):
            return _LOST
        if isinstance(err, psycopg.OperationalError):
            sqlstate = err.sqlstate
            if sqlstate is None or sqlstate.startswith("08") or sqlstate in _CUT_SQLSTATES:
                return _LOST
            if sqlstate == "57014":  # statement_timeout
                return "the query took longer than the server allows; narrow it and retry"
            if sqlstate in _CONTENTION_SQLSTATES:
                return "the database could not complete the request now (a deadlock or a lock held too long); retry"
            if sqlstate.startswith("53"):
                return "the database is out of a resource (connections, memory or disk); try again shortly"
            return None  # 54000 (a value too large for an index) and the like: the request's, not the server's
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (SQLAlchemy's ``orig``, ``raise … from``), nearest first. Not what it was
    raised while handling (``__context__``): a service may turn a database error into an error of its own."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(found) < 16:
        err = todo.pop(0)
        if err is None or any(err is seen for seen in found):
            continue
        found.append(err)
        todo += [getattr(err, "orig", None), err.__cause__]
    return found


def _shed(exc: Exception) -> None:
    """A checkout that timed out: the pool is saturated, the request is shed (503 with a short Retry-After)."""
    if isinstance(exc, PoolTimeout):
        metrics.OVERLOAD.labels("db_pool").inc()
        raise Overloaded(_BUSY) from exc


def _refused(exc: Exception) -> str | None:
    """Why no connection could be had, when it is the database's reason (a socket error counts)."""
    return _LOST if isinstance(exc, OSError) else unavailable(exc)


async def _close_after(conn_cm: Any, exc: BaseException) -> None:
    """Leave a connection's context after ``exc`` (rolling back). When the connection is gone the rollback
    fails too; that second error says nothing new, so ``exc`` is what gets reported."""
    try:
        await conn_cm.__aexit__(type(exc), exc, exc.__traceback__)
    except Exception as closing:
        if unavailable(closing) is None:
            raise


def _is_race(exc: BaseException) -> bool:
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(exc, IntegrityError) and sqlstate in {"23503", "23505"}


def _is_bad_value(exc: BaseException) -> bool:
    if isinstance(exc, DataError | UnicodeEncodeError):
        return True
    import psycopg

    return isinstance(exc, StatementError) and isinstance(exc.orig, psycopg.DataError)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).splitlines()[0] if str(orig) else orig.__class__.__name__

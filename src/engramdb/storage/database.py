"""Engine, connections and the two kinds of transaction every service uses.

* :meth:`Database.tenant` opens a transaction that runs as the ``engram_app`` role (no superuser, no
  BYPASSRLS) with ``engram.org_id`` set locally, so row-level security confines every statement to one
  organization even if a query forgot its ``org_id`` filter.
* :meth:`Database.system` runs as the connecting role. Only the few operations that cannot know the org
  up front use it: resolving an API key to its org, creating an organization, migrations.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from engramdb.config import Settings
from engramdb.errors import Conflict, ServiceUnavailable, ValidationFailed

APP_ROLE = "engram_app"
# Custom plans always: searches carry values the planner must see (the query's words decide whether the
# full-text index pays; the organization literal decides which vector index matches), and prepared
# statements would otherwise switch to a generic plan after five runs.
_TENANT_SETUP = text(
    "SELECT set_config('role', :role, true), set_config('engram.org_id', :org, true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
)


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


@dataclass
class Database:
    engine: AsyncEngine
    url: str

    @classmethod
    def connect(cls, settings: Settings, *, url: str | None = None) -> Database:
        libpq_url = url or resolve_url(settings)
        engine = create_async_engine(
            sqlalchemy_url(libpq_url),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_pre_ping=True,
            connect_args={"options": f"-c statement_timeout={settings.db_statement_timeout_ms}"},
        )
        return cls(engine=engine, url=libpq_url)

    @asynccontextmanager
    async def tenant(self, org_id: uuid.UUID) -> AsyncIterator[AsyncConnection]:
        async with self._begin() as conn:
            await conn.execute(_TENANT_SETUP, {"role": APP_ROLE, "org": str(org_id)})
            yield conn

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
        except (OperationalError, OSError) as exc:
            raise ServiceUnavailable("the database is unreachable; try again shortly") from exc
        try:
            yield conn
        finally:
            await conn_cm.__aexit__(None, None, None)

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        try:
            conn_cm = self.engine.begin()
            conn = await conn_cm.__aenter__()
        except (OperationalError, OSError) as exc:
            raise ServiceUnavailable("the database is unreachable; try again shortly") from exc
        try:
            yield conn
        except BaseException as exc:
            await conn_cm.__aexit__(type(exc), exc, exc.__traceback__)
            if _is_bad_value(exc):
                # The last line of defence: a value the schemas let through but Postgres refuses
                # (a NUL byte, an out-of-range number) is the caller's error, not the server's.
                raise ValidationFailed(f"a value in the request cannot be stored: {_first_line(exc)}") from exc
            if getattr(getattr(exc, "orig", None), "sqlstate", None) == "57014":  # statement_timeout
                raise ServiceUnavailable("the query took longer than the server allows; narrow it and retry") from exc
            if _is_race(exc):
                # A row this request relied on was deleted or created by another request meanwhile.
                raise Conflict("another request changed the same data at the same time; retry") from exc
            raise
        else:
            try:
                await conn_cm.__aexit__(None, None, None)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise ServiceUnavailable("the database connection was lost; try again") from exc
                raise

    async def ping(self) -> None:
        async with self.system() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


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

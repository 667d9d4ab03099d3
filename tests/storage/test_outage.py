"""A statement cut by the database going away (its backend terminated, as a crash or a shutdown does)
leaves Database as ServiceUnavailable (503, retry), never as a raw driver error (500); the pool then
replaces the dead connection by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from engramdb.errors import ServiceUnavailable, ValidationFailed
from engramdb.storage.database import Database, unavailable
from tests.conftest import PgServer


def _terminate(admin_url: str, pid: int) -> None:
    """What a crash or `pg_ctl stop` does to a connection: its backend goes, mid-transaction."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.fixture
async def own_db(database_url: str) -> AsyncIterator[Database]:
    from engramdb.config import Settings

    database = Database.connect(Settings(database_url=database_url, auto_migrate=False))
    yield database
    await database.dispose()


async def test_a_transaction_cut_by_the_server_is_service_unavailable(own_db: Database, pg_server: PgServer) -> None:
    with pytest.raises(ServiceUnavailable) as raised:
        async with own_db.system() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            _terminate(pg_server.admin_url, pid)
            await conn.execute(text("SELECT 1"))
    assert "try again" in raised.value.detail
    await own_db.ping()  # the next transaction gets a new connection


async def test_an_autocommit_statement_cut_by_the_server_is_service_unavailable(
    own_db: Database, pg_server: PgServer
) -> None:
    with pytest.raises(ServiceUnavailable):
        async with own_db.autocommit() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            _terminate(pg_server.admin_url, pid)
            await conn.execute(text("SELECT 1"))
    await own_db.ping()


async def test_an_unreachable_server_is_service_unavailable() -> None:
    from engramdb.config import Settings

    db = Database.connect(Settings(database_url="postgresql://postgres@/engram?host=/nonexistent-engram-socket-dir"))
    try:
        with pytest.raises(ServiceUnavailable):
            await db.ping()
        with pytest.raises(ServiceUnavailable):
            async with db.autocommit():
                pass
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    "error",
    [
        pg_errors.AdminShutdown("terminating connection due to administrator command"),
        pg_errors.CrashShutdown("terminating connection because of crash of another server process"),
        pg_errors.CannotConnectNow("the database system is starting up"),
        pg_errors.ConnectionFailure("connection failure"),
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.InterfaceError("the connection is closed"),
        pg_errors.QueryCanceled("canceling statement due to statement timeout"),
        pg_errors.DeadlockDetected("deadlock detected"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_what_counts_as_the_database_being_unavailable(error: Exception) -> None:
    wrapped = OperationalError("SELECT 1", {}, error)
    assert unavailable(error) and unavailable(wrapped)
    try:  # wrapped again, as a job queue's connector wraps it
        raise RuntimeError("database error") from wrapped
    except RuntimeError as outer:
        assert unavailable(outer)


def test_what_does_not() -> None:
    assert unavailable(ValueError("no")) is None
    assert unavailable(IntegrityError("INSERT", {}, pg_errors.UniqueViolation("duplicate key"))) is None
    # An OperationalError about the request's data (an index row too large): not the server's state.
    assert unavailable(OperationalError("INSERT", {}, pg_errors.ProgramLimitExceeded("index row too big"))) is None
    try:  # a service that turned the database's refusal into its own answer (an import naming a line)
        raise ValidationFailed("line 3: the memory cannot be stored") from OperationalError(
            "INSERT", {}, pg_errors.ProgramLimitExceeded("index row too big")
        )
    except ValidationFailed as own:
        assert unavailable(own) is None
    try:  # a service's own error raised while handling a database error is its own
        try:
            raise pg_errors.AdminShutdown("gone")
        except pg_errors.AdminShutdown:
            raise LookupError("not found") from None
    except LookupError as own:
        assert unavailable(own) is None

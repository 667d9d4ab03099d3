"""Health, liveness and readiness, and the 503 (never 500) a client gets while the database is away."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from engramdb._version import __version__
from engramdb.api import problems
from engramdb.config import Settings
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.server import create_app
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database, sqlalchemy_url
from engramdb.storage.migrate import head_revision
from tests.conftest import PgServer, assert_problem, fresh_database

UNREACHABLE = "postgresql://postgres@/engram?host=/nonexistent-engram-socket-dir"
AppOver = Callable[[str], httpx.AsyncClient]


def _retry_after(r: httpx.Response) -> int:
    assert r.headers.get("retry-after", "").isdigit(), r.headers
    return int(r.headers["retry-after"])


@pytest.fixture
async def app_over(embedder: MiniLMEmbedder) -> AsyncIterator[AppOver]:
    """A client of the whole app over the database at a URL (started nothing: the lifespan is not run)."""
    opened: list[tuple[Database, httpx.AsyncClient]] = []

    def make(url: str) -> httpx.AsyncClient:
        settings = Settings(database_url=url, auto_migrate=False, key_touch_interval_s=0)
        db = Database.connect(settings)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, db=db, embedder=embedder)),
            base_url="http://engram.test",
        )
        opened.append((db, client))
        return client

    yield make
    for db, client in opened:
        await client.aclose()
        await db.dispose()


async def test_liveness_and_readiness(anon: httpx.AsyncClient) -> None:
    live = await anon.get("/v1/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok", "version": __version__}
    ready = await anon.get("/v1/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ok",
        "database": "ok",
        "schema_revision": head_revision(),
        "version": __version__,
    }
    assert (await anon.get("/v1/health")).status_code == 200


async def test_a_database_without_the_migrations_is_not_ready(pg_server: PgServer, app_over: AppOver) -> None:
    name = f"unmigrated_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    client = app_over(pg_server.url(name))
    ready = await client.get("/v1/health/ready")
    body = assert_problem(ready, 503)
    assert "engramdb migrate" in str(body["detail"]) and _retry_after(ready) > 0
    assert (await client.get("/v1/health/live")).status_code == 200
    assert (await client.get("/v1/health")).status_code == 200  # the database answers: /health is unchanged


async def test_an_unreachable_database_answers_503_with_retry_after(app_over: AppOver) -> None:
    client = app_over(UNREACHABLE)
    assert (await client.get("/v1/health/live")).status_code == 200  # the process is fine: do not restart it
    for path in ("/v1/health", "/v1/health/ready"):
        r = await client.get(path)
        assert_problem(r, 503)
        assert _retry_after(r) > 0
    key = "egm_abcdefghijkl_" + "x" * 43  # well formed: checking it needs the database
    r = await client.get("/v1/memories", headers={"Authorization": f"Bearer {key}"})
    assert_problem(r, 503)
    assert _retry_after(r) > 0


async def test_an_external_database_that_comes_back_is_used_again(
    pg_server: PgServer, embedder: MiniLMEmbedder
) -> None:
    """ENGRAM_DATABASE_URL's server is not Engram's to restart: while it refuses connections requests
    answer 503 with Retry-After, and once it is back the next request reconnects, with no restart."""
    url = fresh_database(pg_server)
    name = url.split("?")[0].rsplit("/", 1)[1]
    settings = Settings(database_url=url, auto_migrate=False, key_touch_interval_s=0)
    db = Database.connect(settings)
    _, key = await keys.create_organization(db, name="outage")
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings, db=db, embedder=embedder)),
        base_url="http://engram.test",
        headers={"Authorization": f"Bearer {key.api_key}"},
    )
    write = {"external_user_id": "ana", "content": "written while the database is up"}
    try:
        assert (await client.post("/v1/memories", json=write)).status_code == 201
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:  # the server goes away
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        for r in (
            await client.post("/v1/memories", json=write),
            await client.get("/v1/memories"),
            await client.get("/v1/health"),
            await client.get("/v1/health/ready"),
        ):
            assert_problem(r, 503)
            assert _retry_after(r) > 0
        assert (await client.get("/v1/health/live")).status_code == 200
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:  # and comes back
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert (await client.get("/v1/health/ready")).status_code == 200
        r = await client.post("/v1/memories", json=write)
        assert r.status_code == 201, r.text
        assert len((await client.get("/v1/memories")).json()["data"]) == 2
    finally:
        await client.aclose()
        await db.dispose()


async def test_a_statement_cut_by_a_shutdown_is_a_503_not_a_500(pg_server: PgServer, database_url: str) -> None:
    """A driver error that escapes a route (the server terminated the connection mid-statement, as a crash
    or a shutdown does: SQLSTATE 57P01) is answered by the mapper as 503 with Retry-After."""
    engine = create_async_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(Exception) as raised:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    cut = raised.value
    app = FastAPI()
    problems.install(app)

    @app.get("/cut")
    async def fails() -> None:
        raise cut

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://engram.test") as client:
        r = await client.get("/cut")
    body = assert_problem(r, 503)
    assert body["type"] == "urn:engramdb:problem:service-unavailable"
    assert _retry_after(r) > 0

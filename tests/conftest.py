"""Test fixtures: one embedded PostgreSQL per test session, a fresh migrated database per test module.

Each module's database is copied from a migrated template (CREATE DATABASE … TEMPLATE), so tests run
against the real schema, row-level security and partitions, never SQLite or mocks.
"""

from __future__ import annotations

import itertools
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

from engramdb.config import Settings
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.server import create_app
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database
from engramdb.storage.embedded import start_embedded
from engramdb.storage.migrate import migrate, prepare_vectors

# Tests race requests against one in-process app on purpose (claims, idempotency, limits); a bound on the
# requests at work would answer some 503 on a small machine. The bound has tests of its own, which set it.
os.environ.setdefault("ENGRAM_MAX_ACTIVE_REQUESTS", "1000")

# CI runs the same examples every time (a red build must be reproducible); by hand they vary.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
hypothesis_settings.register_profile("dev")
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")

TEMPLATE = "engram_template"
_counter = itertools.count()


@dataclass(frozen=True)
class PgServer:
    data_dir: Path
    admin_url: str

    def url(self, database: str) -> str:
        return self.admin_url.replace("/postgres?", f"/{database}?", 1)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> PgServer:
    data_dir = tmp_path_factory.mktemp("engram-data")
    admin_url = start_embedded(data_dir, "postgres")
    server = PgServer(data_dir=data_dir, admin_url=admin_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    migrate(server.url(TEMPLATE))
    prepare_vectors(server.url(TEMPLATE), MiniLMEmbedder.model, MiniLMEmbedder.dimensions)
    return server


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """The real default model, loaded once for the whole run."""
    return MiniLMEmbedder()


def stop_postgres(pgdata: Path) -> None:
    """Stop the embedded PostgreSQL in ``pgdata`` if a server process left it behind (one that was
    killed, or a test that failed before the server stopped)."""
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        except (ProcessLookupError, ValueError, IndexError):
            pass


def fresh_database(server: PgServer) -> str:
    name = f"test_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    return server.url(name)


@pytest.fixture(scope="module")
def database_url(pg_server: PgServer) -> str:
    return fresh_database(pg_server)


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, auto_migrate=False, key_touch_interval_s=0)


@pytest.fixture(scope="module")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.connect(settings)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
def app(settings: Settings, db: Database, embedder: MiniLMEmbedder):  # type: ignore[no-untyped-def]
    return create_app(settings, db=db, embedder=embedder)


@dataclass
class Org:
    id: uuid.UUID
    key: str
    client: httpx.AsyncClient


OrgFactory = Callable[[], Awaitable[Org]]


@pytest.fixture(scope="module")
async def make_org(app, db: Database) -> AsyncIterator[OrgFactory]:  # type: ignore[no-untyped-def]
    """Create a new organization with an admin key and an in-process client authenticated as it."""
    clients: list[httpx.AsyncClient] = []

    async def factory() -> Org:
        org, key = await keys.create_organization(db, name=f"org-{uuid.uuid4().hex[:8]}")
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://engram.test",
            headers={"Authorization": f"Bearer {key.api_key}"},
        )
        clients.append(client)
        return Org(id=org.id, key=key.api_key, client=client)

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
async def org(make_org: OrgFactory) -> Org:
    return await make_org()


@pytest.fixture
def anon(app) -> Iterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    yield httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://engram.test")


def client_for(app, key: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://engram.test",
        headers={"Authorization": f"Bearer {key}"},
    )


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert str(body["type"]).startswith("urn:engramdb:problem:")
    assert body["title"] and body["detail"]
    return body

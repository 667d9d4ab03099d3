"""Reads on a streaming replica (ENGRAM_READ_DATABASE_URL), read-your-writes for the caller that wrote.

The session's embedded server is the primary; a standby is made from it with the bundled `pg_basebackup
-R` and started with the bundled `pg_ctl`, on the same machine. With the standby's replay paused, what one
key writes is read back by that key (the primary serves it) and not yet by another key of the same
organization (the replica serves it): so reads do go to the replica. Once replay resumes, both see it.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest

from engramdb import metrics
from engramdb.config import Settings
from engramdb.schemas.directory import ApiKeyCreate
from engramdb.server import create_app
from engramdb.services.tenancy import keys
from engramdb.storage import embedded
from engramdb.storage.database import Database
from tests.conftest import PgServer


@pytest.fixture(scope="module")
def standby(pg_server: PgServer, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A streaming standby of the session's server; the URL of the module's database on it."""
    server = embedded._joined[embedded.pgdata_of(pg_server.data_dir)].server
    folder = tmp_path_factory.mktemp("replica")
    pgdata = folder / "pgdata"
    as_user: dict[str, Any] = {}
    if server.system_user is not None:  # run as root: the server's own user must own and reach the folder
        account = pwd.getpwnam(server.system_user)
        for parent in (folder, *folder.parents):
            parent.chmod(parent.stat().st_mode | 0o055)
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_user = {"user": server.system_user}
    primary_socket = database_url.rsplit("host=", 1)[1].split("&")[0]

    def run(tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(server.bin_path / tool), *args], capture_output=True, text=True, timeout=120, **as_user
        )
        log = folder / "log"
        assert done.returncode == 0, f"{tool}: {done.stderr}{log.read_text() if log.exists() else ''}"

    run("pg_basebackup", "-D", str(pgdata), "-R", "-X", "stream", "-c", "fast", "-h", primary_socket, "-U", "postgres")
    for copied in (embedded.REGISTRY, ".s.PGSQL.5432.lock"):  # the primary's list of its users, its socket's lock
        (pgdata / copied).unlink(missing_ok=True)
    run("pg_ctl", "-D", str(pgdata), "-o", f'-h "" -k {pgdata}', "-l", str(folder / "log"), "-w", "start")
    try:
        yield database_url.replace(f"host={primary_socket}", f"host={pgdata}")
    finally:
        run("pg_ctl", "-D", str(pgdata), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def settings(database_url: str, standby: str) -> Settings:
    return Settings(database_url=database_url, read_database_url=standby, auto_migrate=False, key_touch_interval_s=0)


@pytest.fixture(scope="module")
async def clients(settings: Settings, db: Database, embedder) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:  # type: ignore[no-untyped-def]
    """Two keys of one organization: the writer and another reader."""
    assert db.replica is not None
    app = create_app(settings, db=db, embedder=embedder)
    _, admin = await keys.create_organization(db, name=f"replica-{uuid.uuid4().hex[:6]}")
    caller = await keys.authenticate(db, admin.api_key)
    other = await keys.create_key(db, caller, ApiKeyCreate(name="reader", scopes=["read"]))
    made = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://engram.test",
            headers={"Authorization": f"Bearer {key}"},
        )
        for key in (admin.api_key, other.api_key)
    ]
    yield tuple(made)
    for client in made:
        await client.aclose()


def _replay(standby: str, action: str) -> None:
    with psycopg.connect(standby, autocommit=True) as conn:
        conn.execute(f"SELECT pg_wal_replay_{action}()")


async def _replayed(standby: str, primary: str) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(primary, autocommit=True) as conn:
        target = conn.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + 60
    with psycopg.connect(standby, autocommit=True) as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, "the standby did not catch up"
            await asyncio.sleep(0.05)


def _reads(server: str) -> float:
    return metrics.REGISTRY.get_sample_value("engram_db_reads_total", {"server": server}) or 0.0


async def test_reads_go_to_the_replica_and_the_writer_reads_its_own_writes(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], standby: str, database_url: str
) -> None:
    writer, reader = clients
    with psycopg.connect(standby) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    await _replayed(standby, database_url)
    _replay(standby, "pause")
    try:
        created = await writer.post(
            "/v1/memories", json={"content": "the violin lessons start in March", "external_user_id": "ana"}
        )
        assert created.status_code == 201, created.text
        memory_id = created.json()["id"]
        on_replica, on_primary = _reads("replica"), _reads("primary")

        # The writer's reads: the replica has not replayed its write, so the primary answers them.
        listed = (await writer.get("/v1/memories")).json()["data"]
        assert [m["id"] for m in listed] == [memory_id]
        assert (await writer.get(f"/v1/memories/{memory_id}")).status_code == 200
        assert _reads("primary") == on_primary + 2 and _reads("replica") == on_replica

        # Another key of the organization wrote nothing: the replica answers, and it is behind.
        assert (await reader.get("/v1/memories")).json()["data"] == []
        assert (await reader.get(f"/v1/memories/{memory_id}")).status_code == 404
        found = await reader.post("/v1/search", json={"query": "violin lessons", "types": ["memories"]})
        assert found.status_code == 200 and found.json()["results"] == []
        context = await reader.post("/v1/context", json={"external_user_id": "ana", "sections": ["memories"]})
        assert context.status_code == 200 and context.json()["citations"] == [], context.text
        assert _reads("replica") >= on_replica + 4
    finally:
        _replay(standby, "resume")

    await _replayed(standby, database_url)
    on_replica = _reads("replica")
    for client in (writer, reader):  # the replica has the write now: it serves both
        assert [m["id"] for m in (await client.get("/v1/memories")).json()["data"]] == [memory_id]
        found = await client.post("/v1/search", json={"query": "violin lessons", "types": ["memories"]})
        assert [r["id"] for r in found.json()["results"]] == [memory_id]
    context = await reader.post("/v1/context", json={"external_user_id": "ana", "sections": ["memories"]})
    assert [c["id"] for c in context.json()["citations"]] == [memory_id]
    assert _reads("replica") >= on_replica + 5


def test_a_read_url_that_is_not_postgres_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ENGRAM_READ_DATABASE_URL must be a PostgreSQL URL"):
        Settings(read_database_url="mysql://replica/engram")

"""``engramdb backup`` / ``restore``: a database with data goes to a file and comes back whole into a fresh
database (memories, documents, a queued job, the keys), the API works on it; a non-empty database is
refused unless --force, and an older backup is migrated on the way in."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from engramdb.cli.main import app as cli
from engramdb.config import Settings
from engramdb.errors import ConfigurationError
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.server import create_app
from engramdb.storage import backup
from engramdb.storage.database import Database
from engramdb.storage.migrate import alembic_config, head_revision, schema_state
from tests.conftest import OrgFactory, PgServer, client_for

runner = CliRunner()


def _empty_database(server: PgServer) -> str:
    name = f"restored_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)


def _cli(monkeypatch: pytest.MonkeyPatch, url: str, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", url)
    result = runner.invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


async def test_a_backup_comes_back_whole_into_a_fresh_database_and_the_api_works_on_it(
    make_org: OrgFactory,
    database_url: str,
    pg_server: PgServer,
    embedder: MiniLMEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org = await make_org()
    memory = (await org.client.post("/v1/memories", json={"content": "Keeps bees on the roof"})).json()
    document = (await org.client.post("/v1/documents", json={"content": "Hive inspection: every 9 days."})).json()
    session = (await org.client.post("/v1/sessions", json={})).json()
    added = await org.client.post(
        f"/v1/sessions/{session['id']}/messages", json={"messages": [{"role": "user", "content": "I like honey."}]}
    )
    job = added.json()["job"]
    assert job["status"] == "queued"  # no worker runs here: the job waits in the queue

    file = tmp_path / "engram.dump"
    code, said = _cli(monkeypatch, database_url, "backup", str(file))
    assert code == 0, said
    assert f"to {file}" in said and f"schema {head_revision()}" in said and file.stat().st_size > 0
    code, said = _cli(monkeypatch, database_url, "backup", str(file))
    assert code == 1 and "--force" in said  # an existing file is not overwritten by accident

    restored = _empty_database(pg_server)
    code, said = _cli(monkeypatch, restored, "restore", str(file))
    assert code == 0, said
    assert "no migration was needed" in said

    settings = Settings(database_url=restored, auto_migrate=False, key_touch_interval_s=0)
    db = Database.connect(settings)
    async with client_for(create_app(settings, db=db, embedder=embedder), org.key) as client:
        assert [m["id"] for m in (await client.get("/v1/memories")).json()["data"]] == [memory["id"]]
        found = (
            await client.post("/v1/search", json={"query": "bees", "types": ["memories"], "mode": "vector"})
        ).json()
        assert found["results"][0]["id"] == memory["id"]  # its vector came back too
        doc = (await client.get(f"/v1/documents/{document['document']['id']}")).json()
        assert doc["content"] == "Hive inspection: every 9 days."
        assert (await client.get(f"/v1/jobs/{job['id']}")).json()["status"] == "queued"
        assert (await client.post("/v1/memories", json={"content": "Sells honey"})).status_code == 201
        # While a server is connected, a restore is refused, even forced.
        code, said = _cli(monkeypatch, restored, "restore", "--force", str(file))
        assert code == 1 and "other connection" in said
    await db.dispose()
    with psycopg.connect(restored) as conn:
        queued = conn.execute(
            "SELECT status FROM procrastinate.procrastinate_jobs WHERE args->>'job_id' = %s", (job["id"],)
        ).fetchall()
        leakproof = conn.execute(
            "SELECT proleakproof FROM pg_proc WHERE oid = 'ts_match_vq(tsvector,tsquery)'::regprocedure"
        ).fetchone()
    assert queued == [("todo",)] and leakproof == (True,)

    code, said = _cli(monkeypatch, restored, "restore", str(file))
    assert code == 1 and "not empty" in said and "--force" in said
    code, said = _cli(monkeypatch, restored, "restore", "--force", str(file))
    assert code == 0 and "replacing what it held" in said, said
    with psycopg.connect(restored) as conn:
        conn.execute("SELECT set_config('engram.org_id', %s, false)", (str(org.id),))
        contents = [r[0] for r in conn.execute("SELECT content FROM memory").fetchall()]
    assert contents == ["Keeps bees on the roof"]  # the backup's state, not a merge with the later write


def test_an_older_backup_is_migrated_when_restored(
    pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = ScriptDirectory.from_config(alembic_config(""))
    previous = script.get_revision(head_revision()).down_revision
    assert isinstance(previous, str)
    older = _empty_database(pg_server)
    command.upgrade(alembic_config(older), previous)
    file = tmp_path / "older.dump"
    assert _cli(monkeypatch, older, "backup", str(file))[0] == 0

    restored = _empty_database(pg_server)
    code, said = _cli(monkeypatch, restored, "restore", str(file))
    assert code == 0 and f"migrated from {previous} to {head_revision()}" in said, said
    assert schema_state(restored).up_to_date


def test_what_is_not_a_backup_or_cannot_be_read_is_refused_before_anything_changes(
    pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _empty_database(pg_server)
    junk = tmp_path / "notes.txt"
    junk.write_text("not a dump")
    code, said = _cli(monkeypatch, target, "restore", str(junk))
    assert code == 1 and "not a file written by `engramdb backup`" in said
    code, said = _cli(monkeypatch, target, "restore", str(tmp_path / "missing.dump"))
    assert code == 2 and "no such file" in said
    code, said = _cli(monkeypatch, target, "backup", str(tmp_path / "empty.dump"))
    assert code == 2 and "no Engram schema" in said
    with psycopg.connect(target) as conn:
        left = conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchone()
    assert left == (0,)


def test_without_client_tools_for_the_server_the_error_says_what_to_install() -> None:
    tools = backup.find_tools("pg_dump")
    assert tools and any(t.major >= 16 for t in tools)  # the embedded server's own, at least
    with pytest.raises(ConfigurationError) as refused:
        backup.closest_tool(tools, 99, "pg_dump")
    assert "apt install postgresql-client-99" in refused.value.detail
    assert "brew install postgresql@99" in refused.value.detail

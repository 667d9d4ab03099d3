from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engramdb.cli.main import app
from engramdb.storage import migrations
from engramdb.storage.migrate import head_revision

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_init_prints_a_working_key_and_refuses_a_duplicate(env: None) -> None:
    created = json.loads(run("init", "--org", "acme", "--json"))
    assert created["api_key"].startswith("egm_") and created["org_id"]
    again = runner.invoke(app, ["init", "--org", "acme"])
    assert again.exit_code == 1 and "already exists" in again.output
    as_json = runner.invoke(app, ["init", "--org", "acme", "--json"])
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"] == "conflict"  # JSON even for an error (it was plain text)
    assert "acme" in run("orgs", "list")
    assert json.loads(run("orgs", "list", "--json"))[0]["name"] == "acme"


def test_keys_create_list_revoke(env: None) -> None:
    run("init", "--org", "keys-org", "--json")
    made = json.loads(run("keys", "create", "--org", "keys-org", "--name", "reader", "--scope", "read", "--json"))
    assert made["scopes"] == ["read"] and made["api_key"].startswith("egm_")
    listed = json.loads(run("keys", "list", "--org", "keys-org", "--json"))
    assert {k["name"] for k in listed} == {"initial admin key", "reader"}
    assert "reader" in run("keys", "list", "--org", "keys-org")
    assert "revoked" in run("keys", "revoke", "--org", "keys-org", made["id"])
    assert len(json.loads(run("keys", "list", "--org", "keys-org", "--json"))) == 1
    assert len(json.loads(run("keys", "list", "--org", "keys-org", "--all", "--json"))) == 2


def test_unknown_org_and_bad_scope_say_what_to_do(env: None) -> None:
    r = runner.invoke(app, ["keys", "list", "--org", "nope"])
    assert r.exit_code == 2 and "engramdb init" in r.output
    r = runner.invoke(app, ["keys", "create", "--org", "nope", "--scope", "root"])
    assert r.exit_code == 2 and "error" in r.output
    run("init", "--org", "scoped-org")
    r = runner.invoke(app, ["keys", "create", "--org", "scoped-org", "--scope", "root"])
    assert r.exit_code == 2 and "scopes" in r.output


def test_migrate_and_doctor(env: None) -> None:
    current = re.search(r"schema at revision (\S+) \(head (\S+)\)", run("migrate"))
    newest = sorted((Path(migrations.__file__).parent / "versions").glob("*.py"))[-1]  # by its dated name
    revision = re.search(r'^revision = "(\S+)"', newest.read_text(), re.M)
    assert revision is not None
    assert current is not None and current[1] == current[2] == head_revision() == revision[1]
    out = run("doctor")
    for word in (
        "postgresql",
        "pgvector",
        "migrations",
        "row-level security",
        "jobs",
        "webhook deliveries",
        "extraction",
    ):
        assert word in out
    assert "FAIL" not in out
    assert "full-text search: the text match can use its index" in out  # migrated by a superuser here


def test_doctor_reports_an_unreachable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    r = runner.invoke(app, ["doctor"])
    assert r.exit_code == 1 and "FAIL" in r.output


def test_bad_configuration_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", "mysql://x")
    r = runner.invoke(app, ["migrate"])
    assert r.exit_code == 2 and "PostgreSQL URL" in r.output


def test_reembed_switches_every_vector_to_the_configured_model(
    env: None, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    created = json.loads(run("init", "--org", "reembed-org", "--json"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT set_config('engram.org_id', %s, false)", (created["org_id"],))
        conn.execute(
            "INSERT INTO memory (org_id, id, content, content_hash) VALUES (%s, gen_random_uuid(), 'a fact', '\\x00')",
            (created["org_id"],),
        )
    monkeypatch.setenv("ENGRAM_EMBEDDER", "hash")
    out = run("reembed")
    assert "embedded" in out and "hash-384" in out
    with psycopg.connect(database_url) as conn:
        left = conn.execute("SELECT count(*) FROM memory WHERE embedding_model IS DISTINCT FROM 'hash-384'").fetchone()
    assert left == (0,)
    assert "embedded 0 rows" in run("reembed")

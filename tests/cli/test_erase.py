"""``engramdb erase`` on this machine's service (in-process through the SDK): the receipt, and its errors."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from typer.testing import CliRunner

from engramdb.cli import connect, erasure, output
from engramdb.cli.main import app
from engramdb.schemas.erasure import ErasureReceipt

runner = CliRunner()
ORG = "erase-org"


@pytest.fixture(scope="module")
def org_id(database_url: str) -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENGRAM_DATABASE_URL", database_url)
        assert runner.invoke(app, ["init", "--org", ORG]).exit_code == 0
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT org_id FROM organization WHERE name = %s", (ORG,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.fixture
def env(database_url: str, org_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)
    monkeypatch.delenv("ENGRAM_API_KEY", raising=False)
    monkeypatch.delenv("ENGRAM_URL", raising=False)
    for console in (output.out, erasure.err, connect.err):
        monkeypatch.setattr(console, "width", 200)  # messages on one line each


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_erase_prints_a_receipt_that_matches_the_audit_log(env: None, org_id: str, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:  # two users with a memory each (each CLI call starts a runtime)
        for external, content in (("cora", "Cora's locker code is 4417"), ("dan", "Dan likes tea")):
            user = uuid.uuid4()
            conn.execute(
                "INSERT INTO user_account (org_id, id, external_id) VALUES (%s, %s, %s)", (org_id, user, external)
            )
            conn.execute(
                "INSERT INTO memory (org_id, id, user_id, content, content_hash) VALUES (%s, %s, %s, %s, '\\x00')",
                (org_id, uuid.uuid4(), user, content),
            )
    receipt = json.loads(cli("erase", "--external-user", "cora", "--json"))
    assert receipt["subject"]["kind"] == "user"
    assert receipt["counts"]["user_account"] == 1 and receipt["counts"]["memory"] == 1
    assert ErasureReceipt.model_validate(receipt).matches(org_id)

    said = cli("erase", "--external-user", "dan")
    assert "user_account" in said and "memory" in said and "sha256" in said and "user.erased" in said


def test_erase_names_exactly_one_subject(env: None) -> None:
    assert "name exactly one of" in cli("erase", code=2)
    assert "name exactly one of" in cli("erase", "--agent", "a", "--session", "b", code=2)

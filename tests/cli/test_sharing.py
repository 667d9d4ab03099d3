"""``engramdb grants …`` and ``--isolation`` on this machine's service (in-process through the SDK)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from engramdb.cli import connect, sharing
from engramdb.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)
    monkeypatch.delenv("ENGRAM_API_KEY", raising=False)
    monkeypatch.delenv("ENGRAM_URL", raising=False)
    for console in (sharing.out, connect.err):
        monkeypatch.setattr(console, "width", 200)
    assert runner.invoke(app, ["init", "--org", "sharing-org"]).exit_code == 0


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--org", "sharing-org"], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_a_grant_to_a_team_by_name(env: None) -> None:
    """Each command starts the local service (a few seconds apiece): three of them."""
    team = json.loads(cli("teams", "create", "support", "--isolation", "federated"))
    assert team["isolation"] == "federated"
    made = json.loads(cli("grants", "create", "memories", "--team", "support", "--tag", "account", "--write"))
    assert made["grantee_team_id"] == team["id"] and made["tags"] == ["account"] and made["permission"] == "write"
    assert cli("grants", "revoke", made["id"]).startswith(f"revoked grant {made['id']} (write on memories, team")

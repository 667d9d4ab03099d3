"""``engramdb retention …`` on this machine's service (in-process through the SDK)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engramdb.cli import connect, retention
from engramdb.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)
    monkeypatch.setenv("ENGRAM_ARCHIVE_DIR", str(tmp_path))
    monkeypatch.delenv("ENGRAM_API_KEY", raising=False)
    monkeypatch.delenv("ENGRAM_URL", raising=False)
    for console in (retention.out, connect.err):
        monkeypatch.setattr(console, "width", 200)
    assert runner.invoke(app, ["init", "--org", "retention-org"]).exit_code == 0


def cli(*args: str) -> str:
    result = runner.invoke(app, [*args, "--org", "retention-org"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_policy_created_and_run_from_the_command_line(env: None, tmp_path: Path) -> None:
    """Two commands, each starting the local service (a few seconds apiece; dry runs are tested through the
    API). The policy lets the audit log go at once: its rows are exported to the archive folder, then deleted."""
    made = cli(
        "retention", "policies", "create", "no audit trail", "--target", "audit_log", "--after-days", "0", "--disabled"
    )
    policy = json.loads(made)
    assert (policy["enabled"], policy["target"], policy["action"], policy["basis"]) == (
        False,
        "audit_log",
        "delete",
        "age",
    )
    shown = cli("retention", "run", "--policy", policy["id"])
    (exported,) = tmp_path.glob("*/audit_log/run-*.jsonl")
    found = len(exported.read_text().splitlines())  # the organization's creation, its key, the policy
    assert found >= 3 and f"audit_log deleted {found}" in shown and "no audit trail" in shown


def test_decay_half_lives_set_and_shown_from_the_command_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)
    monkeypatch.setenv("ENGRAM_ARCHIVE_DIR", str(tmp_path))
    monkeypatch.delenv("ENGRAM_API_KEY", raising=False)
    monkeypatch.delenv("ENGRAM_URL", raising=False)
    assert runner.invoke(app, ["init", "--org", "decay-org"]).exit_code == 0
    done = runner.invoke(app, ["decay", "set", "episodic=7", "task=0", "--json", "--org", "decay-org"])
    assert done.exit_code == 0, done.output
    in_force = {d["memory_type"]: d["half_life_days"] for d in json.loads(done.output)["data"]}
    assert in_force == {"episodic": 7.0, "task": 0.0, "preference": 180.0, "fact": 0.0, "procedural": 0.0}
    bad = runner.invoke(app, ["decay", "set", "episodic:7", "--org", "decay-org"])
    assert bad.exit_code == 2 and "TYPE=DAYS" in bad.output
    unknown = runner.invoke(app, ["decay", "set", "gossip=7", "--org", "decay-org"])
    assert unknown.exit_code != 0 and "gossip" in unknown.output

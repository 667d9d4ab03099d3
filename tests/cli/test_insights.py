"""``engramdb insights …`` on this machine's service (in-process through the SDK)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engramdb.cli import connect, insights
from engramdb.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)
    monkeypatch.delenv("ENGRAM_API_KEY", raising=False)
    monkeypatch.delenv("ENGRAM_URL", raising=False)
    for console in (insights.out, connect.err):
        monkeypatch.setattr(console, "width", 200)
    assert runner.invoke(app, ["init", "--org", "insights-org"]).exit_code == 0


def cli(*args: str) -> str:
    result = runner.invoke(app, [*args, "--org", "insights-org"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_session_opened_and_refused_from_the_command_line(env: None) -> None:
    """Two commands (each starts the local service): a session opened, and a release refused below the
    minimum, with the reason on one line and a non-zero exit."""
    made = json.loads(
        cli(
            "insights",
            "open",
            "common predicates",
            "--query",
            "fact_predicates",
            "--bucket",
            "likes",
            "--bucket",
            "works_at",
            "--bound",
            "2",
            "--epsilon",
            "0.5",
        )
    )
    assert (made["sensitivity"], made["noise_scale"], made["role"]) == (4, 8, "owner")
    refused = runner.invoke(app, ["insights", "release", made["id"], "--org", "insights-org"])
    assert refused.exit_code != 0 and "fewer than 5" in refused.output

"""Documents, repositories and webhooks from the command line (this machine's service, in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engramdb.cli import connect, output
from engramdb.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)
    monkeypatch.setenv("ENGRAM_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")  # the webhook below points there
    for name in ("ENGRAM_API_KEY", "ENGRAM_URL"):
        monkeypatch.delenv(name, raising=False)
    for console in (output.out, connect.err):
        monkeypatch.setattr(console, "width", 200)


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args, "--org", "library-org"], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_documents_and_repositories(env: None, tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", "--org", "library-org"]).exit_code == 0
    (tmp_path / "guide.md").write_text("# Install\n\nRun pip install engramdb.\n")
    (tmp_path / "notes.txt").write_text("Remember the milk.\n")
    cli("ingest", str(tmp_path), "--repo", "handbook")
    [repo] = json.loads(cli("repos", "list", "--json"))
    assert repo["name"] == "handbook" and repo["document_count"] == 2
    listed = cli("documents", "list", "--repo", repo["id"])
    assert "guide.md" in listed and "notes.txt" in listed
    docs = {d["path"]: d for d in json.loads(cli("documents", "list", "--json"))}
    shown = json.loads(cli("documents", "show", docs["guide.md"]["id"], "--content"))
    assert "pip install engramdb" in shown["content"]
    cli("documents", "delete", docs["notes.txt"]["id"])
    assert [d["path"] for d in json.loads(cli("documents", "list", "--json"))] == ["guide.md"]
    cli("repos", "delete", repo["id"])
    assert json.loads(cli("repos", "list", "--json")) == []


def test_webhooks(env: None) -> None:
    made = cli("webhooks", "create", "http://127.0.0.1:9/hook", "--event", "memory.created")
    secret = made.strip().splitlines()[-1]
    assert secret.startswith("whsec_")
    [hook] = json.loads(cli("webhooks", "list", "--json"))
    assert hook["event_types"] == ["memory.created"] and "secret" not in hook
    queued = cli("webhooks", "test", hook["id"]).split()[-1]
    [delivery] = json.loads(cli("webhooks", "deliveries", hook["id"], "--json"))
    assert delivery["id"] == queued and delivery["event_type"] == "webhook.test"
    busy = cli("webhooks", "replay", hook["id"], queued, code=1)  # still pending: nothing to replay yet
    assert "409" in busy
    bad = cli("webhooks", "create", "ftp://example.com/hook", code=2)
    assert "url" in bad
    cli("webhooks", "delete", hook["id"])
    assert json.loads(cli("webhooks", "list", "--json")) == []

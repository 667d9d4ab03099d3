"""``engramdb tasks …`` and ``engramdb inbox …`` on this machine's service (in-process through the SDK)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from engramdb.cli import connect, work
from engramdb.cli.connect import Target, run
from engramdb.cli.main import app
from engramdb.sdk import AsyncClient

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)
    monkeypatch.delenv("ENGRAM_API_KEY", raising=False)
    monkeypatch.delenv("ENGRAM_URL", raising=False)
    for console in (work.out, connect.err):
        monkeypatch.setattr(console, "width", 200)
    assert runner.invoke(app, ["init", "--org", "work-org"]).exit_code == 0


def cli(*args: str) -> str:
    result = runner.invoke(app, [*args, "--org", "work-org"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_tasks_and_inbox_from_the_command_line(env: None) -> None:
    """Four commands (each starts the local service: a few seconds apiece); the rest is set up through
    the SDK."""

    async def setup(c: AsyncClient) -> tuple[str, str]:
        planner = await c.agents.create(name="cli-planner")
        worker = await c.agents.create(name="cli-worker")
        await c.inbox.send(from_agent_id=planner.id, to_agent_id=worker.id, payload={"hello": "worker"})
        return str(worker.id), str(planner.id)

    worker_id, _ = run(Target(None, None, "work-org"), setup)
    task = json.loads(cli("tasks", "create", "write the report", "--queue", "cli", "--priority", "3"))
    assert task["state"] == "submitted"
    claimed = json.loads(cli("tasks", "claim", worker_id, "--queue", "cli"))
    assert claimed["id"] == task["id"] and claimed["state"] == "working"
    done = json.loads(cli("tasks", "complete", task["id"], "--lease-id", claimed["lease_id"], "--result", '{"ok": 1}'))
    assert done["state"] == "completed" and done["result"] == {"ok": 1}
    inbox = json.loads(cli("inbox", "list", worker_id, "--unacked", "--json"))
    assert [m["payload"] for m in inbox] == [{"hello": "worker"}]

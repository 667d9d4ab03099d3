"""The record commands on this machine's service (in-process through the SDK), and their errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engramdb.cli import connect, records, transfer
from engramdb.cli.main import app

runner = CliRunner()


@pytest.fixture(scope="module")
def org(database_url: str) -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENGRAM_DATABASE_URL", database_url)
        assert runner.invoke(app, ["init", "--org", "records-org"]).exit_code == 0
    return "records-org"


@pytest.fixture
def env(database_url: str, org: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)
    monkeypatch.delenv("ENGRAM_API_KEY", raising=False)
    monkeypatch.delenv("ENGRAM_URL", raising=False)
    for console in (records.out, transfer.out, transfer.err, connect.err):
        monkeypatch.setattr(console, "width", 200)  # tables and messages on one line each


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_chat_import_keeps_times_and_sessions_show_them(env: None, tmp_path: Path) -> None:
    export = tmp_path / "chat.json"
    export.write_text(
        json.dumps(
            {
                "title": "Moving",
                "messages": [
                    {"role": "user", "content": "I moved to Lisbon last month", "timestamp": "2025-03-02T09:00:00Z"},
                    {"role": "assistant", "content": "How is it?", "timestamp": "2025-03-02T09:00:05Z"},
                    {"role": "user", "content": "Sunny. My sister Anna visits in May", "timestamp": 1740906010},
                ],
            }
        )
    )
    said = cli("chat-import", str(export), "--user", "alice")
    assert "imported 3 messages into 1 session(s) for user 'alice'" in said
    assert "were imported before" in cli("chat-import", str(export), "--user", "alice")
    [session] = json.loads(cli("sessions", "list", "--user", "alice", "--json"))
    assert session["title"] == "Moving" and session["message_count"] == 3
    messages = json.loads(cli("sessions", "show", session["id"], "--json"))
    assert [m["occurred_at"][:19] for m in messages] == [
        "2025-03-02T09:00:00",
        "2025-03-02T09:00:05",
        "2025-03-02T09:00:10",
    ]
    jobs = json.loads(cli("jobs", "list", "--json"))
    assert [j["kind"] for j in jobs] == ["engram.extract"]  # one job for the whole session
    assert json.loads(cli("jobs", "show", jobs[0]["id"]))["session_id"] == session["id"]
    table = cli("search", "which city did alice move to", "--user", "alice", "--type", "messages")
    assert "Lisbon" in table and "message" in table
    hits = json.loads(cli("search", "Anna", "--user", "alice", "--json"))["results"]
    assert any("Anna" in h["content"] for h in hits)
    assert "alice" in cli("users", "list")
    cli("chat-import", str(export), "--user", "alice", "--again", "--no-extract")
    assert len(json.loads(cli("sessions", "list", "--user", "alice", "--json"))) == 2


def test_bad_chat_export_names_the_line(env: None, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"role": "user", "content": "fine"}\n{"role": "robot", "content": "no"}\n')
    result = runner.invoke(app, ["chat-import", str(bad), "--user", "bob"])
    assert result.exit_code == 2 and "line 2: unknown role 'robot'" in result.output


def test_memories_add_list_show_history_delete(env: None) -> None:
    stored = cli("memories", "add", "Bob is allergic to peanuts", "--user", "bob", "--type", "fact")
    memory_id = stored.split()[-1]
    assert "allergic to peanuts" in cli("memories", "list", "--user", "bob")
    assert json.loads(cli("memories", "show", memory_id))["content"] == "Bob is allergic to peanuts"
    history = json.loads(cli("memories", "history", memory_id, "--json"))
    assert [h["action"] for h in history] == ["created"]
    cli("memories", "delete", memory_id, "--hard")
    missing = cli("memories", "show", memory_id, code=1)
    assert "404" in missing


def test_facts_as_of_and_the_graph(env: None) -> None:
    first = json.loads(
        cli("facts", "add", "Carol", "lives_in", "Lisbon", "--single", "--entity", "--valid-from", "2024-01-01")
    )
    second = json.loads(
        cli("facts", "add", "Carol", "lives_in", "Porto", "--single", "--entity", "--valid-from", "2025-06-01")
    )
    assert second["action"] == "INVALIDATE" and first["fact"]["id"] in second["invalidated"]
    now = json.loads(cli("facts", "list", "--subject", "Carol", "--json"))
    assert [f["object"] for f in now] == ["Porto"]
    then = json.loads(cli("facts", "list", "--subject", "Carol", "--valid-at", "2024-06-01", "--json"))
    assert [f["object"] for f in then] == ["Lisbon"]
    assert "Porto" in cli("facts", "list", "--subject", "Carol")
    around = cli("graph", "neighbors", "Carol")
    assert "lives_in" in around and "Porto" in around
    assert "Carol -[lives_in]- Porto" in cli("graph", "paths", "Carol", "Porto")
    assert "Carol" in cli("graph", "entities", "Car")


def test_agents_and_keys(env: None) -> None:
    cli("agents", "create", "support-bot")
    assert "support-bot" in cli("agents", "list")
    made = json.loads(cli("keys", "create", "--name", "reader", "--scope", "read", "--json"))
    assert any(k["name"] == "reader" for k in json.loads(cli("keys", "list", "--json")))
    assert "revoked" in cli("keys", "revoke", made["id"])


def test_remote_errors_say_what_to_do(env: None) -> None:
    no_key = runner.invoke(app, ["search", "x", "--url", "http://127.0.0.1:9"])
    assert no_key.exit_code == 2 and "--api-key" in no_key.output
    down = runner.invoke(app, ["memories", "list", "--url", "http://127.0.0.1:9", "--api-key", "egm_x"])
    assert down.exit_code == 1 and "cannot reach Engram at http://127.0.0.1:9" in down.output
    slash = runner.invoke(app, ["users", "delete", "a/b"])
    assert slash.exit_code == 2 and "holds a '/'" in slash.output and "Traceback" not in slash.output
    wrong = runner.invoke(app, ["memories", "show", str(uuid.uuid4()), "--org", "no-such-org"])
    assert wrong.exit_code == 2 and "engramdb init" in wrong.output

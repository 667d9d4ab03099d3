"""The record commands on this machine's service (in-process through the SDK), and their errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engramdb.cli import connect, output, records, transfer
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
    assert json.loads(cli("memories", "accesses", memory_id, "--json")) == []
    cli("search", "peanut allergy", "--user", "bob", "--type", "memories")
    (access,) = json.loads(cli("memories", "accesses", memory_id, "--json"))
    assert access["memory_id"] == memory_id and access["access_type"] == "search"
    assert "search" in cli("memories", "accesses", memory_id, "--type", "search")
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


def test_predicates_decide_what_a_fact_closes(env: None) -> None:
    # Without --single, the catalogue decides: lives_in is single-valued out of the box.
    cli("facts", "add", "Dora", "lives_in", "Oslo")
    assert json.loads(cli("facts", "add", "Dora", "lives_in", "Bergen"))["action"] == "INVALIDATE"
    made = json.loads(cli("predicates", "set", "Plays", "one", "--description", "the instrument someone plays"))
    assert (made["name"], made["cardinality"], made["source"]) == ("plays", "one", "organization")
    cli("facts", "add", "Dora", "plays", "cello")
    assert json.loads(cli("facts", "add", "Dora", "plays", "oboe"))["action"] == "INVALIDATE"
    assert json.loads(cli("facts", "add", "Dora", "plays", "harp", "--many"))["action"] == "ADD"  # the flag wins
    own = json.loads(cli("predicates", "list", "--source", "organization", "--json"))
    assert [p["name"] for p in own] == ["plays"] and "lives_in" in cli("predicates", "list")
    assert "cardinality: Input should be 'one' or 'many'" in cli("predicates", "set", "plays", "several", code=2)
    assert "plays" in cli("predicates", "delete", "plays")
    assert json.loads(cli("predicates", "list", "--source", "organization", "--json")) == []


def test_agents_and_keys(env: None) -> None:
    cli("agents", "create", "support-bot")
    assert "support-bot" in cli("agents", "list")
    # A key is bound to a user by the app's own id for them, as every record command takes a user.
    made = json.loads(cli("keys", "create", "--name", "reader", "--scope", "read", "--user", "erin", "--json"))
    [erin] = [u for u in json.loads(cli("users", "list", "--json")) if u["external_id"] == "erin"]
    assert made["user_id"] == erin["id"]
    assert any(k["name"] == "reader" for k in json.loads(cli("keys", "list", "--json")))
    assert "revoked" in cli("keys", "revoke", made["id"])
    wrong = cli("keys", "create", "--user-id", "erin", code=2)  # refused before anything starts
    assert "pass --user erin" in " ".join(wrong.replace("│", " ").split())  # the message, out of its box


def test_teams_and_apps(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    team = json.loads(cli("teams", "create", "support", "--description", "front line"))
    assert team["description"] == "front line"
    renamed = json.loads(cli("teams", "update", "support", "--name", "helpdesk", "--description", ""))
    assert renamed["id"] == team["id"] and renamed["name"] == "helpdesk" and renamed["description"] is None
    monkeypatch.setattr(output.out, "width", 80)  # a terminal's width, or a pipe's
    listed = cli("teams", "list")
    assert any(team["id"] in line and "helpdesk" in line for line in listed.splitlines()), listed
    assert cli("teams", "delete", "helpdesk").strip() == f"deleted team helpdesk ({team['id']})"
    assert "no team named 'helpdesk'" in cli("teams", "show", "helpdesk", code=1)
    made = json.loads(cli("apps", "create", "mobile", "--inactive", "--metadata", '{"platform": "ios"}'))
    assert made["is_active"] is False and made["metadata"] == {"platform": "ios"}
    assert json.loads(cli("apps", "update", made["id"], "--active"))["is_active"] is True
    [app_] = json.loads(cli("apps", "list", "--json"))
    assert app_["name"] == "mobile" and app_["is_active"] is True
    assert made["id"] in cli("apps", "delete", "mobile")


def test_remote_errors_say_what_to_do(env: None) -> None:
    no_key = runner.invoke(app, ["search", "x", "--url", "http://127.0.0.1:9"])
    assert no_key.exit_code == 2 and "--api-key" in no_key.output
    down = runner.invoke(app, ["memories", "list", "--url", "http://127.0.0.1:9", "--api-key", "egm_x"])
    assert down.exit_code == 1 and "cannot reach Engram at http://127.0.0.1:9" in down.output
    slash = runner.invoke(app, ["users", "delete", "a/b"])
    assert slash.exit_code == 2 and "holds a '/'" in slash.output and "Traceback" not in slash.output
    wrong = runner.invoke(app, ["memories", "show", str(uuid.uuid4()), "--org", "no-such-org"])
    assert wrong.exit_code == 2 and "engramdb init" in wrong.output

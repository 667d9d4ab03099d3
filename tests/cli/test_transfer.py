"""`engramdb export` / `engramdb import`: an organization round-trips through a JSON Lines file into a
wiped (brand-new) organization with identical search results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engramdb.cli import connect, records, transfer
from engramdb.cli.main import app

runner = CliRunner()
QUERIES = ["which city did alice move to", "peanut allergy", "Anna", "where does Carol live"]


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)
    for name in ("ENGRAM_API_KEY", "ENGRAM_URL"):
        monkeypatch.delenv(name, raising=False)
    for console in (records.out, transfer.out, transfer.err, connect.err):
        monkeypatch.setattr(console, "width", 200)


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, [*args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def _results(org: str) -> list[list[tuple[str, str, float]]]:
    found = []
    for query in QUERIES:
        kinds = [arg for kind in ("messages", "memories", "facts", "entities") for arg in ("--type", kind)]
        hits = json.loads(cli("search", query, *kinds, "--org", org, "--top-k", "5", "--json"))["results"]
        found.append([(h["type"], h["id"], round(h["score"], 6)) for h in hits])
    return found


def test_export_wipe_import_gives_identical_search_results(env: None, tmp_path: Path) -> None:
    cli("init", "--org", "source-org")
    chat = tmp_path / "chat.json"
    chat.write_text(
        json.dumps(
            [
                {"role": "user", "content": "I moved to Lisbon last month", "timestamp": "2025-03-02T09:00:00Z"},
                {"role": "assistant", "content": "How is it going?", "timestamp": "2025-03-02T09:01:00Z"},
                {"role": "user", "content": "Great, my sister Anna visits in May", "timestamp": "2025-03-02T09:02:00Z"},
            ]
        )
    )
    cli("chat-import", str(chat), "--user", "alice", "--org", "source-org")
    cli("memories", "add", "Alice has a peanut allergy", "--user", "alice", "--org", "source-org")
    cli("facts", "add", "Carol", "lives_in", "Porto", "--entity", "--single", "--org", "source-org")
    before = _results("source-org")
    assert all(before) and any(t == "fact" for row in before for t, _, _ in row)

    dump = tmp_path / "source.jsonl"
    assert "exported" in cli("export", "--out", str(dump), "--org", "source-org")
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert lines[0]["kind"] == "engram.export" and {r["kind"] for r in lines[1:]} >= {"message", "memory", "fact"}

    cli("init", "--org", "restored-org")  # an empty organization: the wiped state
    assert _results("restored-org") == [[] for _ in QUERIES]
    report = cli("import", str(dump), "--org", "restored-org")
    assert "imported" in report and "memories" in report
    assert _results("restored-org") == before

    again = cli("import", str(dump), "--org", "restored-org")  # idempotent
    assert _results("restored-org") == before and "already there" in again


def test_export_of_one_user_and_a_bad_file(env: None, tmp_path: Path) -> None:
    cli("init", "--org", "user-export-org")
    cli("memories", "add", "Dana keeps bees", "--user", "dana", "--org", "user-export-org")
    cli("memories", "add", "Eve plays the oboe", "--user", "eve", "--org", "user-export-org")
    dump = tmp_path / "dana.jsonl"
    cli("export", "--user", "dana", "--out", str(dump), "--org", "user-export-org")
    contents = [json.loads(line) for line in dump.read_text().splitlines()]
    texts = [r["data"].get("content") for r in contents[1:] if r["kind"] == "memory"]
    assert texts == ["Dana keeps bees"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(dump.read_text().splitlines()[0] + "\n{not json\n")
    refused = runner.invoke(app, ["import", str(bad), "--org", "user-export-org"])
    assert refused.exit_code == 1 and "line 2" in refused.output

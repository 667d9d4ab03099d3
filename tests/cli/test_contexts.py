"""``engramdb offload`` and ``engramdb contexts restore`` on this machine's service."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engramdb import limits
from engramdb.cli import connect
from engramdb.cli import contexts as cli_contexts
from engramdb.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)
    monkeypatch.delenv("ENGRAM_API_KEY", raising=False)
    monkeypatch.delenv("ENGRAM_URL", raising=False)
    for console in (cli_contexts.err, connect.err):
        monkeypatch.setattr(console, "width", 200)
    assert runner.invoke(app, ["init", "--org", "contexts-org"]).exit_code == 0  # the one organization


@pytest.mark.usefixtures("env")
def test_a_file_is_offloaded_and_restored_byte_exact(tmp_path: Path) -> None:
    data = random.Random(11).randbytes(1_200_000) + b"\x00" * 900_000  # big enough for the progress bar
    source = tmp_path / "core dump.bin"
    source.write_bytes(data)
    made = runner.invoke(app, ["offload", str(source), "--title", "core dump", "--json"], catch_exceptions=False)
    assert made.exit_code == 0, made.output
    ctx = json.loads(made.stdout)["context"]
    assert ctx["original_bytes"] == len(data) and ctx["filename"] == "core dump.bin"
    target = tmp_path / "restored.bin"
    restored = runner.invoke(app, ["contexts", "restore", ctx["id"], "-o", str(target)], catch_exceptions=False)
    assert restored.exit_code == 0, restored.output
    assert target.read_bytes() == data and not (tmp_path / "restored.bin.part").exists()
    to_stdout = runner.invoke(app, ["contexts", "restore", ctx["id"]], catch_exceptions=False)
    assert to_stdout.stdout_bytes == data


def test_a_file_over_the_limit_is_refused_before_sending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_contexts.err, "width", 200)
    big = tmp_path / "big.log"
    with big.open("wb") as handle:
        handle.truncate(limits.MAX_CONTEXT_BYTES + 1)
    refused = runner.invoke(app, ["offload", str(big)])
    assert refused.exit_code == 1 and "16,777,216-byte limit" in refused.output

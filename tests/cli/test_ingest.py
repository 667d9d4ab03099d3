"""`engramdb ingest PATH --repo NAME`: one command syncs a folder; a second sync re-embeds only what changed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from engramdb.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGRAM_DATABASE_URL", database_url)


def _ingest(folder: Path, *extra: str) -> str:
    result = runner.invoke(app, ["ingest", str(folder), "--repo", "notes", "--org", "ingest-org", *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _count(output: str, label: str) -> int:
    match = re.search(rf"{label}\s*│\s*(\d+)", output)
    assert match, output
    return int(match[1])


def test_ingest_syncs_a_folder_and_resyncs_only_what_changed(env: None, tmp_path: Path, database_url: str) -> None:
    created = runner.invoke(app, ["init", "--org", "ingest-org", "--json"])
    assert created.exit_code == 0 and json.loads(created.output)["api_key"]
    folder = tmp_path / "notes"
    (folder / "guide").mkdir(parents=True)
    (folder / ".gitignore").write_text("*.log\n")
    (folder / "README.md").write_text("# Notes\n\n## Install\n\nRun the installer.\n\n## Usage\n\nCall it daily.\n")
    (folder / "guide" / "tips.md").write_text("# Tips\n\nKeep the kettle clean.\n")
    (folder / "tool.py").write_text("def brew(tea: str) -> str:\n    return tea\n")
    (folder / "debug.log").write_text("ignored by .gitignore")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (folder / "empty.md").write_text("   \n")

    first = _ingest(folder)
    assert _count(first, "added") == 4  # .gitignore, README.md, guide/tips.md, tool.py
    assert _count(first, "skipped") == 2 and "logo.png: binary" in first and "empty.md" in first
    assert "debug.log" not in first

    (folder / "README.md").write_text("# Notes\n\n## Install\n\nRun the installer.\n\n## Usage\n\nCall it hourly.\n")
    (folder / "guide" / "tips.md").unlink()
    second = _ingest(folder)
    assert _count(second, "changed") == 1 and _count(second, "unchanged") == 2
    assert _count(second, "deleted") == 1 and "deleted guide/tips.md" in second
    embedded = _count(second, "chunks embedded")
    assert 1 <= embedded <= 2  # only the edited section's chunk(s), not the whole folder

    third = _ingest(folder)
    assert _count(third, "unchanged") == 3 and _count(third, "chunks embedded") == 0
    with psycopg.connect(database_url) as conn:
        paths = {r[0] for r in conn.execute("SELECT path FROM document WHERE repository_id IS NOT NULL").fetchall()}
    assert paths == {".gitignore", "README.md", "tool.py"}


def test_ingest_says_what_to_do_when_the_folder_or_org_is_wrong(env: None, tmp_path: Path) -> None:
    r = runner.invoke(app, ["ingest", str(tmp_path / "missing"), "--repo", "x", "--org", "ingest-org"])
    assert r.exit_code != 0 and "not a folder" in " ".join(r.output.split())
    r = runner.invoke(app, ["ingest", str(tmp_path), "--repo", "x", "--org", "no-such-org"])
    assert r.exit_code != 0 and "engramdb init" in " ".join(r.output.split())

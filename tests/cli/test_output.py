"""Tables at a terminal's width: an id is never broken across lines, so it can be copied."""

from __future__ import annotations

import io
import uuid

import pytest
from rich.console import Console

from engramdb.cli import output

IDS = [str(uuid.UUID(int=n * 0x1111_2222_3333_4444_5555_6666_7777_8888)) for n in range(1, 5)]
LONG = "a rather long title that goes on and on about the things it is about, [b]not markup[/b] " * 2
WHEN = "2025-03-02T09:00:00+00:00"


def render(monkeypatch: pytest.MonkeyPatch, width: int, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    monkeypatch.setattr(output, "out", console)
    made = output.table(f"{len(rows)} things", *columns)
    for values in rows:
        output.row(made, *values)
    output.emit([], False, made)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert all(len(line.rstrip()) <= width for line in text.splitlines()), text
    return text


def whole(text: str, ids: list[str]) -> bool:
    return all(any(i in line for line in text.splitlines()) for i in ids)


def test_an_id_keeps_its_width_at_80_columns_and_text_folds(monkeypatch: pytest.MonkeyPatch) -> None:
    columns = ("id", "title", "status", "messages", "created")
    text = render(
        monkeypatch, 80, columns, [(IDS[0], LONG, "active", "3", WHEN), (IDS[1], "short", "closed", "10", WHEN)]
    )
    assert whole(text, IDS[:2]), text
    assert "┃ id" in text  # still a table
    assert text.count("rather") == 2  # the long title folds onto more lines, whole


def test_rows_with_two_ids_become_blocks_when_80_columns_cannot_hold_them(monkeypatch: pytest.MonkeyPatch) -> None:
    columns = ("id", "queue", "state", "prio", "title", "claimed by", "created")
    rows = [(IDS[0], "cli", "working", "3", LONG, IDS[1], WHEN), (IDS[2], "cli", "submitted", "0", "short", "", WHEN)]
    text = render(monkeypatch, 80, columns, rows)
    assert whole(text, IDS[:3]), text
    lines = text.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("id ")] == [IDS[0], IDS[2]]
    assert any(line.split()[:3] == ["claimed", "by", IDS[1]] for line in lines)
    # A cell holding two ids with a space between them breaks at the space, never inside an id.
    text = render(monkeypatch, 80, ("id", "bound to"), [(IDS[3], f"team={IDS[0]}, user={IDS[1]}")] * 2)
    assert whole(text, [IDS[3], f"team={IDS[0]}", f"user={IDS[1]}"]), text


def test_a_wide_terminal_keeps_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    columns = ("id", "queue", "state", "prio", "title", "claimed by", "created")
    text = render(monkeypatch, 200, columns, [(IDS[0], "cli", "working", "3", "write it", IDS[1], WHEN)])
    assert any(IDS[0] in line and IDS[1] in line and "write it" in line for line in text.splitlines()), text

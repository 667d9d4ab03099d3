"""How the CLI's record commands print: tables for people, ``--json`` for scripts.

A table never breaks an id, so it can be copied: every column first gets the width its longest id needs
(other columns, their header's width if there is room, else a few characters), then the room left is
shared out, the narrowest columns first, and text that still does not fit folds onto more lines. When
even that leaves no room (two ids side by side in 80 columns), each row prints as a block of
``field  value`` lines instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Column, Table

out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many rows.")]
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_NARROWEST = 6  # the least a column of text is given before the rows turn into blocks


def short(text: str | None, width: int = 80) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def emit(rows: Iterable[BaseModel] | BaseModel, as_json: bool, table: Table | None = None) -> None:
    if as_json:
        data: Any = (
            rows.model_dump(mode="json") if isinstance(rows, BaseModel) else [r.model_dump(mode="json") for r in rows]
        )
        out.print_json(json.dumps(data))
    elif table is not None:
        out.print(fit(table, out))


def row(table: Table, *values: str) -> None:
    table.add_row(*(escape(v) for v in values))  # stored text is data, never rich markup


def table(title: str, *columns: str) -> Table:
    made = Table(title=escape(title), title_justify="left")
    for column in columns:
        made.add_column(column, overflow="fold")
    return made


def json_object(text: str | None) -> dict[str, Any]:
    """An option's JSON object (metadata, a payload, a result); nothing given is an empty one."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise typer.BadParameter("give a JSON object")
    return value


def fit(made: Table, console: Console) -> RenderableType:
    """``made`` (from :func:`table`) sized for ``console``'s width with every id whole, or one block of
    lines per row when the ids leave too little room (see the module's docstring)."""
    columns = made.columns
    wants = [max(_cell_width(console, cell) for cell in (column.header, *column.cells)) for column in columns]
    ids = [_id_width(column) for column in columns]
    room = console.width - (3 * len(columns) + 1)  # a space either side of each cell, a rule between and around
    with_headers = [max(least, _cell_width(console, column.header)) for least, column in zip(ids, columns, strict=True)]
    at_least = [max(least, _NARROWEST) for least in ids]
    # Whole headers if they fit, else at least a few characters a column, else blocks.
    for least in (with_headers, at_least):
        floors = [min(want, width) for want, width in zip(wants, least, strict=True)]
        if sum(floors) <= room:
            break
    else:
        return _blocks(made)
    widths = list(floors)
    for _ in range(room - sum(floors)):  # one character at a time to the narrowest column still short
        short_of = [i for i, width in enumerate(widths) if width < wants[i]]
        if not short_of:
            break
        widths[min(short_of, key=widths.__getitem__)] += 1
    for column, width in zip(columns, widths, strict=True):
        column.width = width
    return made


def _cell_width(console: Console, cell: RenderableType) -> int:
    return Measurement.get(console, console.options, cell).maximum


def _id_width(column: Column) -> int:
    """The widest word holding an id in ``column`` (0 if none): the column is never narrower."""
    words = (word for cell in column.cells for word in str(cell).split() if _UUID.search(word))
    return max((len(word) for word in words), default=0)


def _blocks(made: Table) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    headers = [str(column.header) for column in made.columns]
    for n, cells in enumerate(zip(*(column.cells for column in made.columns), strict=True)):
        if n:
            grid.add_row("", "")
        for header, cell in zip(headers, cells, strict=True):
            grid.add_row(header, cell)
    return Group(made.title, grid) if made.title else grid

"""How the CLI's record commands print: tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

out = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=10_000, help="At most this many rows.")]


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
        out.print(table)


def row(table: Table, *values: str) -> None:
    table.add_row(*(escape(v) for v in values))  # stored text is data, never rich markup


def table(title: str, *columns: str) -> Table:
    made = Table(title=escape(title), title_justify="left")
    for column in columns:
        made.add_column(column, overflow="fold")
    return made

"""``engramdb backup`` and ``engramdb restore``: the whole database to one file and back, with PostgreSQL's
own ``pg_dump`` and ``pg_restore`` (``engramdb.storage.backup``). Operator commands: they act on this
machine's database, the embedded server in ENGRAM_DATA_DIR or the one ENGRAM_DATABASE_URL names."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from engramdb.config import Settings
from engramdb.errors import ConfigurationError, EngramError
from engramdb.storage import backup as backups
from engramdb.storage.database import resolve_url

out = Console()
err = Console(stderr=True)


class _Bar:
    """A progress bar on stderr for :class:`engramdb.storage.backup.Steps`."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def start(self, total: int, what: str) -> None:
        self.task = self.progress.add_task(what, total=total, item="")

    def advance(self, item: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=1, item=item)


def _progress() -> Progress:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[item]}", markup=True),
    )
    return Progress(*columns, console=err, transient=True)


def _database(settings: Settings) -> str:
    if settings.embedded:
        return f"the embedded PostgreSQL in {settings.data_dir}"
    return "the database of ENGRAM_DATABASE_URL"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "kB", "MB"):
        if size < 1024:
            return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError: say which variable is wrong
        err.print(f"[red]error:[/red] invalid configuration: {exc}")
        raise typer.Exit(2) from exc


def _fail(exc: EngramError) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(exc.detail)}", soft_wrap=True)
    return typer.Exit(2 if isinstance(exc, ConfigurationError) else 1)


def backup(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="The file to write (default: engram-YYYYMMDD-HHMMSS.dump in this folder).", show_default=False
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite PATH if it exists.")] = False,
) -> None:
    """Back up the whole database to one file: memories, conversations, documents, keys, settings and the
    queued jobs, as pg_dump's custom format. Safe while `engramdb serve` runs (one consistent snapshot)."""
    settings = _settings()
    target = path or Path(f"engram-{datetime.now():%Y%m%d-%H%M%S}.dump")
    try:
        url = resolve_url(settings)
        with _progress() as progress:
            dumped = backups.dump(url, target, overwrite=force, steps=_Bar(progress))
    except EngramError as exc:
        raise _fail(exc) from exc
    out.print(
        f"backed up {_database(settings)} (PostgreSQL {dumped.server_version}, schema {dumped.revision}, "
        f"{dumped.tables} tables) to {dumped.path}: {_size(dumped.size)}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    out.print(f"restore it with: engramdb restore {dumped.path}", markup=False, highlight=False, soft_wrap=True)


def restore(
    path: Annotated[Path, typer.Argument(help="A file written by `engramdb backup`.", show_default=False)],
    force: Annotated[
        bool, typer.Option("--force", help="Drop everything in the database first, if it holds anything.")
    ] = False,
) -> None:
    """Restore a backup into an empty database (a new ENGRAM_DATA_DIR, or a new database in
    ENGRAM_DATABASE_URL), in one transaction, then apply the migrations if the backup is older than this
    version. A database that holds anything is refused unless --force; stop the servers and workers that
    use it first."""
    settings = _settings()
    try:
        url = resolve_url(settings)
        with _progress() as progress:
            restored = backups.restore(url, path, force=force, steps=_Bar(progress))
    except EngramError as exc:
        raise _fail(exc) from exc
    state = restored.schema
    migrated = (
        "no migration was needed"
        if restored.revision == state.current
        else f"migrated from {restored.revision} to {state.current}"
    )
    replaced = ", replacing what it held" if restored.replaced else ""
    out.print(
        f"restored {path} ({restored.tables} tables) into {_database(settings)}{replaced}; {migrated}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )

"""``engramdb ingest PATH --repo NAME``: sync a folder (or git working tree) into a repository.

Reads what git would track (see ``cli.walk``), sends the files to the documents service in groups (each
file's changed chunks only are re-embedded), deletes the documents of files that are gone, and prints a
summary: added, changed, unchanged, deleted, and skipped with the reasons. A bad file is skipped and
reported; it never stops the rest of the sync.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from engramdb.cli.walk import Found, walk
from engramdb.config import Settings
from engramdb.errors import ConfigurationError
from engramdb.providers.documents import MAX_DOCUMENT_BYTES
from engramdb.schemas.directory import Organization
from engramdb.services import keys, repositories
from engramdb.services.context import Caller
from engramdb.services.runtime import Runtime
from engramdb.storage.database import Database, resolve_url
from engramdb.storage.migrate import migrate, prepare_vectors

GROUP = 32  # files per call to the service: one progress step, bounded memory


@dataclass
class Report:
    repository: str
    counts: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0


async def _org(db: Database, ref: str | None) -> Organization:
    if ref is not None:
        found = await keys.find_organizations(db, ref)
        if len(found) != 1:
            raise ConfigurationError(
                f"no single organization named or with id '{ref}'; see `engramdb orgs list`"
                if found
                else f"no organization named or with id '{ref}'; create one with `engramdb init --org NAME`"
            )
        return found[0]
    every = await keys.list_organizations(db)
    if len(every) != 1:
        raise ConfigurationError(
            "pass --org NAME: "
            + (
                "there is no organization yet (create one with `engramdb init --org NAME`)"
                if not every
                else f"this server has {len(every)} organizations"
            )
        )
    return every[0]


async def sync_folder(
    rt: Runtime, caller: Caller, root: Path, repository: str, *, prune: bool, console: Console
) -> Report:
    """Sync ``root`` into the repository named ``repository`` (created if missing)."""
    started = time.perf_counter()
    repo = await repositories.ensure_repository(rt, caller, repository, source=str(root.resolve()))
    found: list[Found] = await asyncio.to_thread(lambda: list(walk(root, max_bytes=MAX_DOCUMENT_BYTES)))
    report = Report(repository=repo.name)
    readable = [f for f in found if f.source is not None]
    for f in found:
        if f.skipped is not None:
            report.skipped.append((f.path, f.skipped))
    if prune and not readable:
        prune = False  # an empty or wrong folder must not wipe the repository
        console.print(f"[yellow]warn[/yellow] nothing readable in {root}: documents of '{repo.name}' were kept")
    keep: set[str] = set()
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"syncing into '{repo.name}'", total=len(readable))
        for start in range(0, len(readable), GROUP):
            group = readable[start : start + GROUP]
            files = []
            for f in group:  # read now, a group at a time: memory holds one group, not the tree
                data = await asyncio.to_thread(f.read, MAX_DOCUMENT_BYTES)
                if isinstance(data, Found):
                    report.skipped.append((data.path, data.skipped or "skipped"))
                else:
                    files.append(repositories.SourceFile(f.path, data))
            for result in await repositories.sync_files(rt, caller, repo.id, files) if files else []:
                report.counts[result.action] += 1
                report.chunks_embedded += result.chunks.embedded
                if result.action == "skipped":
                    report.skipped.append((result.path, result.reason or "skipped"))
                else:
                    keep.add(result.path)
            progress.advance(task, len(group))
    if prune:
        report.deleted = await repositories.prune(rt, caller, repo.id, keep)
    report.seconds = time.perf_counter() - started
    return report


def run(settings: Settings, root: Path, repository: str, *, org: str | None, prune: bool, console: Console) -> Report:
    if not root.is_dir():
        raise ConfigurationError(f"{root} is not a folder; pass the folder (or git working tree) to ingest")

    async def go() -> Report:
        url = resolve_url(settings)
        migrate(url)
        runtime = Runtime.build(settings, Database.connect(settings, url=url))
        prepare_vectors(url, runtime.embedder.model, runtime.embedder.dimensions)
        try:
            organization = await _org(runtime.db, org)
            caller = Caller.operator(organization.id, actor="cli:ingest")
            return await sync_folder(runtime, caller, root, repository, prune=prune, console=console)
        finally:
            await runtime.close()
            await runtime.db.dispose()

    return asyncio.run(go())


def summary(report: Report) -> Table:
    table = Table(title=f"repository '{report.repository}' synced in {report.seconds:.1f} s")
    table.add_column("files")
    table.add_column("count", justify="right")
    for action in ("added", "changed", "unchanged"):
        table.add_row(action, str(report.counts.get(action, 0)))
    table.add_row("deleted", str(len(report.deleted)))
    table.add_row("skipped", str(len(report.skipped)))
    table.add_row("chunks embedded", str(report.chunks_embedded))
    return table

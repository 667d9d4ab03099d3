"""``engramdb ingest PATH --repo NAME``: sync a folder (or git working tree) into a repository.

Reads what git would track (see ``cli.walk``), sends the files to the documents service in groups (each
file's changed chunks only are re-embedded), deletes the documents of files that are gone, and prints a
summary: added, changed, unchanged, deleted, and skipped with the reasons. A bad file is skipped and
reported; it never stops the rest of the sync.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from engramdb import limits
from engramdb.cli.connect import Target
from engramdb.cli.connect import run as run_with_client
from engramdb.cli.walk import Found, walk
from engramdb.errors import ConfigurationError
from engramdb.providers.documents import MAX_DOCUMENT_BYTES
from engramdb.schemas.documents import FileResult, Repository
from engramdb.sdk import AsyncClient, ConflictError

GROUP = 32  # files read per progress step: memory holds one group, not the tree


@dataclass
class Report:
    repository: str
    counts: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    chunks_embedded: int = 0
    seconds: float = 0.0

    def add(self, result: FileResult, keep: set[str]) -> None:
        self.counts[result.action] += 1
        self.chunks_embedded += result.chunks.embedded
        if result.action == "skipped":
            self.skipped.append((result.path, result.reason or "skipped"))
        else:
            keep.add(result.path)


async def ensure_repository(client: AsyncClient, name: str, source: str) -> Repository:
    """The repository called ``name``, created on first sync."""
    async for found in client.repositories.list():
        if found.name == name:
            return found
    try:
        return await client.repositories.create(name=name, source=source[: limits.MAX_URL_CHARS])
    except ConflictError:  # created meanwhile by another sync
        async for found in client.repositories.list():
            if found.name == name:
                return found
        raise


async def _send(client: AsyncClient, repo: Repository, files: list[tuple[str, bytes]], report: Report) -> set[str]:
    """Sync calls within the API's per-call limits; a file over the sync limit goes up as an upload."""
    keep: set[str] = set()
    batch: list[dict[str, str]] = []
    size = 0

    async def flush() -> None:
        nonlocal batch, size
        if batch:
            for result in (await client.repositories.sync_files(repo.id, files=batch)).results:
                report.add(result, keep)
        batch, size = [], 0

    for path, data in files:
        if len(data) > limits.MAX_SYNC_BYTES:
            uploaded = await client.documents.upload(data, filename=Path(path).name, path=path, repository_id=repo.id)
            action = {"created": "added", "updated": "changed"}.get(uploaded.action, "unchanged")
            result = FileResult(path=path, action=action, document_id=uploaded.document.id, chunks=uploaded.chunks)
            report.add(result, keep)
            continue
        if size + len(data) > limits.MAX_SYNC_BYTES or len(batch) >= limits.MAX_SYNC_FILES:
            await flush()
        batch.append({"path": path, "content_base64": base64.b64encode(data).decode("ascii")})
        size += len(data)
    await flush()
    return keep


async def sync_folder(client: AsyncClient, root: Path, repository: str, *, prune: bool, console: Console) -> Report:
    """Sync ``root`` into the repository named ``repository`` (created if missing)."""
    started = time.perf_counter()
    repo = await ensure_repository(client, repository, str(root.resolve()))
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
            files: list[tuple[str, bytes]] = []
            for f in group:
                data = await asyncio.to_thread(f.read, MAX_DOCUMENT_BYTES)
                if isinstance(data, Found):
                    report.skipped.append((data.path, data.skipped or "skipped"))
                else:
                    files.append((f.path, data))
            keep |= await _send(client, repo, files, report)
            progress.advance(task, len(group))
    if prune:
        if len(keep) > limits.MAX_KEEP_PATHS:
            raise ConfigurationError(f"more than {limits.MAX_KEEP_PATHS:,} files: sync smaller folders, or --no-prune")
        report.deleted = (await client.repositories.prune(repo.id, keep_paths=sorted(keep))).deleted_paths
    report.seconds = time.perf_counter() - started
    return report


def run(target: Target, root: Path, repository: str, *, prune: bool, console: Console) -> Report:
    if not root.is_dir():
        raise ConfigurationError(f"{root} is not a folder; pass the folder (or git working tree) to ingest")
    return run_with_client(target, lambda client: sync_folder(client, root, repository, prune=prune, console=console))


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

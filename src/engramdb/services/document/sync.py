"""Syncing a repository with a folder or a git tree.

A sync is two calls, both idempotent: :func:`sync_files` adds or replaces the files given (each one its
own transaction; a file that cannot be read is skipped with the reason and the others go on), and
:func:`prune` deletes the documents whose path the source no longer has. ``engramdb ingest PATH --repo
NAME`` is ``repositories.ensure_repository``, ``sync_files`` over the tree in batches, then ``prune``
with the paths that synced (added, changed or unchanged): a file that became unreadable loses its old
document.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, select

from engramdb import limits
from engramdb.errors import EngramError, PayloadTooLarge
from engramdb.schemas.documents import DocumentResult, FileResult, RepositorySync
from engramdb.services.core import audit, events
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.document import ingest, repositories
from engramdb.storage import tables as t

SYNC_GROUP = 64  # files prepared and embedded together: bounds memory when the CLI passes a whole tree
_FILE_ACTIONS = {"created": "added", "updated": "changed", "unchanged": "unchanged"}


@dataclass(frozen=True)
class SourceFile:
    """One file of a sync: its path inside the repository (``docs/intro.md``), its bytes, and the media
    type it was declared with, if any (by default it follows from the extension and the bytes)."""

    path: str
    data: bytes
    content_type: str | None = None


def source_files(body: RepositorySync) -> list[SourceFile]:
    """The files of a sync call as bytes; their total is bounded per call (one file alone only by the
    document limit, so that any file the parser takes can be sent)."""
    files = [
        SourceFile(
            f.path, f.content_base64 if f.content_base64 is not None else (f.content or "").encode(), f.content_type
        )
        for f in body.files
    ]
    total = sum(len(f.data) for f in files)
    if len(files) > 1 and total > limits.MAX_SYNC_BYTES:
        raise PayloadTooLarge(
            f"these files hold {total:,} bytes; one call may send {limits.MAX_SYNC_BYTES:,} (or a single file)"
        )
    return files


def _file_result(path: str, result: DocumentResult | EngramError) -> FileResult:
    if isinstance(result, EngramError):
        return FileResult(path=path, action="skipped", reason=result.detail)
    action = _FILE_ACTIONS[result.action]
    return FileResult(path=path, action=action, document_id=result.document.id, chunks=result.chunks)


async def sync_files(
    rt: Runtime, caller: Caller, repository_id: uuid.UUID, files: list[SourceFile]
) -> list[FileResult]:
    """Add or replace each file at its path, re-embedding only the chunks that changed. A file that is
    binary, unsupported, empty or too large is ``skipped`` with the reason; it does not fail the call."""
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        await repositories.fetch(conn, caller, repository_id, write=True)
    results: list[FileResult] = []
    for start in range(0, len(files), SYNC_GROUP):
        group = files[start : start + SYNC_GROUP]
        jobs = [
            ingest.IngestJob(data=f.data, path=f.path, declared_type=f.content_type, repository_id=repository_id)
            for f in group
        ]
        done = await ingest.ingest_many(rt, caller, jobs)
        results += [_file_result(f.path, r) for f, r in zip(group, done, strict=True)]
    tally: dict[str, int] = {}
    for r in results:
        tally[r.action] = tally.get(r.action, 0) + 1
    async with rt.db.tenant(caller.org_id) as conn:
        await repositories.fetch(conn, caller, repository_id, lock=True)
        await repositories.recount(conn, caller, repository_id, last_synced_at=func.now())
        await audit.record(conn, caller, "repository.synced", "repository", repository_id, tally)
    return results


async def prune(rt: Runtime, caller: Caller, repository_id: uuid.UUID, keep_paths: set[str]) -> list[str]:
    """Delete the repository's documents (with their chunks) whose path is not in ``keep_paths``;
    returns the deleted paths, sorted."""
    caller.require("write")
    d = t.document
    async with rt.db.tenant(caller.org_id) as conn:
        await repositories.fetch(conn, caller, repository_id, lock=True)
        query = select(d.c.id, d.c.path).where(d.c.org_id == caller.org_id, d.c.repository_id == repository_id)
        keep = {path.strip() for path in keep_paths}  # as sync stores them
        gone = [(r.id, r.path) for r in (await conn.execute(query)) if r.path not in keep]
        for start in range(0, len(gone), 1_000):
            batch = [doc_id for doc_id, _ in gone[start : start + 1_000]]
            await conn.execute(delete(d).where(d.c.org_id == caller.org_id, d.c.id.in_(batch)))
            await events.redact(conn, caller.org_id, "document", batch)
            await audit.redact(conn, caller.org_id, "document", batch)
        await repositories.recount(conn, caller, repository_id, last_synced_at=func.now())
        paths = sorted(path for _, path in gone)
        details = {"deleted": len(paths)}  # not their paths: the log keeps no name of what it deleted
        await audit.record(conn, caller, "repository.pruned", "repository", repository_id, details)
    return paths

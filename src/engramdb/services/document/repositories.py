"""Repositories: named collections of documents with paths, kept in step with a folder or a git tree.

A sync is two calls, both idempotent: :func:`sync_files` adds or replaces the files given (each one its
own transaction; a file that cannot be read is skipped with the reason and the others go on), and
:func:`prune` deletes the documents whose path the source no longer has. ``engramdb ingest PATH --repo
NAME`` is :func:`ensure_repository`, ``sync_files`` over the tree in batches, then ``prune`` with the
paths that synced (added, changed or unchanged): a file that became unreadable loses its old document.

Who sees what: repositories, documents and chunks carry a user, an agent and an app but no team. A
user- or agent-bound key sees its own; a team-bound key those of its team's users; rows shared with the
whole org (no user) only unbound keys. Everything fails closed, as ``services/core/visibility.py`` explains.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids, limits
from engramdb.errors import EngramError, PayloadTooLarge, PermissionDenied
from engramdb.schemas.common import Page
from engramdb.schemas.documents import (
    DocumentResult,
    FileResult,
    Repository,
    RepositoryCreate,
    RepositorySync,
    RepositoryUpdate,
)
from engramdb.services.core import audit, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy.directory import find_external_user, resolve_user
from engramdb.services.webhooks import endpoints as webhooks
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import content_filters
from engramdb.storage.repo import one_or_404, page_by_id, raise_conflict, require_row

repo = t.repository
CONFLICTS = {"uq_repository_name": "a repository with that name already exists"}
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


def visible(caller: Caller, table: Table) -> list[ColumnElement[bool]]:
    """Conditions that confine a query on ``repository``, ``document`` or ``chunk`` to what the key sees."""
    conds: list[ColumnElement[bool]] = [table.c.org_id == caller.org_id]
    if caller.user_id is not None:
        conds.append(table.c.user_id == caller.user_id)
    elif caller.team_id is not None:
        conds.append(table.c.user_id.in_(visibility.users(caller)))
    if caller.agent_id is not None:
        conds.append(table.c.agent_id == caller.agent_id)
    return conds


async def owner_scope(conn: AsyncConnection, caller: Caller, ref: Any, *, create: bool) -> dict[str, Any] | None:
    """The user, agent and app a new repository or document belongs to. Each one named must exist and
    agree with the key's bindings, and a team-bound key must name a user of its team (else it could not
    see what it wrote). ``create`` turns an unknown ``external_user_id`` into a new user; without it such
    a name gives None (a lookup: that user has nothing yet)."""
    unknown = False
    if ref.external_user_id is not None and not create:  # a lookup: creates no one
        user_id = await find_external_user(conn, caller, ref.external_user_id)
        unknown = user_id is None
        if unknown and caller.user_id is not None:
            raise PermissionDenied("this API key is bound to a user; it cannot write for another one")
        user_id = None if unknown else caller.bind("user_id", user_id)
    else:
        user_id = await resolve_user(conn, caller, user_id=ref.user_id, external_user_id=ref.external_user_id)
    agent_id = caller.bind("agent_id", ref.agent_id)
    await require_row(conn, t.agent, caller.org_id, agent_id, "agent")
    await require_row(conn, t.app, caller.org_id, ref.app_id, "app")
    if caller.team_id is not None and (
        user_id is None or await conn.scalar(visibility.users(caller).where(t.user_account.c.id == user_id)) is None
    ):
        raise PermissionDenied("this API key is bound to a team: name a user of that team")
    return None if unknown else {"user_id": user_id, "agent_id": agent_id, "app_id": ref.app_id}


async def fetch(
    conn: AsyncConnection, caller: Caller, repository_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any]:
    query = select(repo).where(*visible(caller, repo), repo.c.id == repository_id)
    return await one_or_404(conn, query.with_for_update() if lock else query, "repository", repository_id)


async def document_scope(
    conn: AsyncConnection, caller: Caller, repository_id: uuid.UUID | None, ref: Any, *, create: bool
) -> dict[str, Any] | None:
    """The owner columns of a new document: its repository's, or those ``ref`` names (see owner_scope)."""
    if repository_id is not None:
        row = await fetch(conn, caller, repository_id, lock=create)  # locked: its document count changes
        return {"repository_id": repository_id, **{k: row[k] for k in ("user_id", "agent_id", "app_id")}}
    scope = await owner_scope(conn, caller, ref, create=create)
    return None if scope is None else {"repository_id": None, **scope}


async def _recount(conn: AsyncConnection, caller: Caller, repository_id: uuid.UUID, **values: Any) -> None:
    """Count the repository's documents afresh (writes keep the count by +1/−1; a sync settles it)."""
    d = t.document
    counted = select(func.count()).where(d.c.org_id == repo.c.org_id, d.c.repository_id == repo.c.id).scalar_subquery()
    stmt = update(repo).where(repo.c.org_id == caller.org_id, repo.c.id == repository_id)
    await conn.execute(stmt.values(document_count=counted, **values))


async def create(db: Database, caller: Caller, body: RepositoryCreate) -> Repository:
    caller.require("write")
    async with db.tenant(caller.org_id) as conn:
        scope = await owner_scope(conn, caller, body, create=True)
        assert scope is not None
        values = body.model_dump(exclude={"user_id", "external_user_id", "agent_id", "app_id"})
        stmt = insert(repo).values(org_id=caller.org_id, id=ids.uuid7(), **scope, **values).returning(repo)
        try:
            row = (await conn.execute(stmt)).mappings().one()
        except IntegrityError as exc:
            raise_conflict(exc, CONFLICTS)
        await audit.record(conn, caller, "repository.created", "repository", row["id"], {"name": body.name})
    return Repository.model_validate(dict(row))


async def ensure_repository(
    rt: Runtime, caller: Caller, name: str, *, source: str | None = None, description: str | None = None
) -> Repository:
    """The repository called ``name``, created (org-wide, or for the key's binding) if there is none.
    A repository of that name the caller cannot see is a 409, like any name clash."""
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        row = (await conn.execute(select(repo).where(*visible(caller, repo), repo.c.name == name))).mappings().first()
    if row is not None:
        return Repository.model_validate(dict(row))
    return await create(rt.db, caller, RepositoryCreate(name=name, source=source, description=description))


async def get(db: Database, caller: Caller, repository_id: uuid.UUID) -> Repository:
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        return Repository.model_validate(await fetch(conn, caller, repository_id))


async def list_repositories(
    db: Database,
    caller: Caller,
    *,
    user_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
    app_id: uuid.UUID | None = None,
    tags_any: list[str] | None = None,
    tags_all: list[str] | None = None,
    cursor: str | None,
    limit: int,
) -> Page[Repository]:
    """Newest first."""
    caller.require("read")
    conds = visible(caller, repo) + content_filters(repo, tags_any=tags_any, tags_all=tags_all)
    for column, value in (("user_id", user_id), ("agent_id", agent_id), ("app_id", app_id)):
        if value is not None:
            conds.append(repo.c[column] == value)
    async with db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(conn, select(repo).where(*conds), repo, cursor=cursor, limit=limit)
    return Page[Repository](data=[Repository.model_validate(r) for r in rows], next_cursor=next_cursor)


async def update_repository(
    db: Database, caller: Caller, repository_id: uuid.UUID, body: RepositoryUpdate
) -> Repository:
    """Name, description, source, tags and metadata; the owner is fixed (its documents carry it too)."""
    caller.require("write")
    values = body.model_dump(exclude_unset=True)
    for column, empty in (("tags", []), ("metadata", {}), ("name", None)):
        if column in values and values[column] is None:
            values.pop(column) if empty is None else values.update({column: empty})
    async with db.tenant(caller.org_id) as conn:
        await fetch(conn, caller, repository_id, lock=True)
        stmt = (
            update(repo)
            .where(repo.c.org_id == caller.org_id, repo.c.id == repository_id)
            .values(**values, updated_at=func.now())
            .returning(repo)
        )
        try:
            row = (await conn.execute(stmt)).mappings().one()
        except IntegrityError as exc:
            raise_conflict(exc, CONFLICTS)
        details = {"fields": sorted(values)}
        await audit.record(conn, caller, "repository.updated", "repository", repository_id, details)
    return Repository.model_validate(dict(row))


async def delete_repository(db: Database, caller: Caller, repository_id: uuid.UUID) -> None:
    """Delete a repository with its documents and their chunks."""
    caller.require("write")
    async with db.tenant(caller.org_id) as conn:
        row = await fetch(conn, caller, repository_id, lock=True)
        await conn.execute(delete(repo).where(repo.c.org_id == caller.org_id, repo.c.id == repository_id))
        await webhooks.redact(conn, caller.org_id, "document", [repository_id], key="repository_id")
        details = {"name": row["name"], "documents": row["document_count"]}
        await audit.record(conn, caller, "repository.deleted", "repository", repository_id, details)


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
    from engramdb.services.document import ingest  # ingest builds on this module's scopes: imported here

    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        await fetch(conn, caller, repository_id)
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
        await fetch(conn, caller, repository_id, lock=True)
        await _recount(conn, caller, repository_id, last_synced_at=func.now())
        await audit.record(conn, caller, "repository.synced", "repository", repository_id, tally)
    return results


async def prune(rt: Runtime, caller: Caller, repository_id: uuid.UUID, keep_paths: set[str]) -> list[str]:
    """Delete the repository's documents (with their chunks) whose path is not in ``keep_paths``;
    returns the deleted paths, sorted."""
    caller.require("write")
    d = t.document
    async with rt.db.tenant(caller.org_id) as conn:
        await fetch(conn, caller, repository_id, lock=True)
        query = select(d.c.id, d.c.path).where(d.c.org_id == caller.org_id, d.c.repository_id == repository_id)
        keep = {path.strip() for path in keep_paths}  # as sync stores them
        gone = [(r.id, r.path) for r in (await conn.execute(query)) if r.path not in keep]
        for start in range(0, len(gone), 1_000):
            batch = [doc_id for doc_id, _ in gone[start : start + 1_000]]
            await conn.execute(delete(d).where(d.c.org_id == caller.org_id, d.c.id.in_(batch)))
            await webhooks.redact(conn, caller.org_id, "document", batch)
        await _recount(conn, caller, repository_id, last_synced_at=func.now())
        paths = sorted(path for _, path in gone)
        details = {"deleted": len(paths), "paths": paths[:100]}
        await audit.record(conn, caller, "repository.pruned", "repository", repository_id, details)
    return paths

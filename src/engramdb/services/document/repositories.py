"""Repositories: named collections of documents with paths, kept in step with a folder or a git tree
(the sync itself is ``sync.py``, which builds on this module and on ``ingest.py``).

Who sees what: repositories, documents and chunks carry a user, an agent and an app but no team. A
user- or agent-bound key sees its own; a team-bound key those of its team's users; rows shared with the
whole org (no user) only unbound keys. Everything fails closed, as ``services/core/visibility.py`` explains.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import PermissionDenied
from engramdb.schemas.common import Page
from engramdb.schemas.documents import (
    Repository,
    RepositoryCreate,
    RepositoryFilters,
    RepositoryUpdate,
)
from engramdb.services.core import audit, events, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy.directory import find_external_user, require_active_app, resolve_user
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching
from engramdb.storage.repo import one_or_404, page_by_id, raise_conflict, require_row

repo = t.repository
CONFLICTS = {"uq_repository_name": "a repository with that name already exists"}


async def owner_scope(conn: AsyncConnection, caller: Caller, ref: Any, *, create: bool) -> dict[str, Any] | None:
    """The user, agent and app a new repository or document belongs to. Each one named must exist and
    agree with the key's bindings, and a team-bound key must name a user or an agent of its team (else it
    could not see what it wrote). ``create`` turns an unknown ``external_user_id`` into a new user; without it such
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
    await require_active_app(conn, caller, ref.app_id)
    await visibility.confine_write(conn, caller, user_id=user_id, agent_id=agent_id)
    # A document has no team column: a team key names one of its users or agents (confine_write checked
    # that it is one), else it could not see what it wrote.
    if caller.team_id is not None and user_id is None and agent_id is None:
        raise PermissionDenied("this API key is bound to a team: name a user or an agent of that team")
    return None if unknown else {"user_id": user_id, "agent_id": agent_id, "app_id": ref.app_id}


async def fetch(
    conn: AsyncConnection, caller: Caller, repository_id: uuid.UUID, *, lock: bool = False, write: bool = False
) -> dict[str, Any]:
    """The repository if this caller may see it, else 404; locked, or asked for ``write``, it is about to
    change (or take documents): only write grants reach it."""
    query = select(repo).where(*visibility.repositories(caller, write=write or lock), repo.c.id == repository_id)
    return await one_or_404(conn, query.with_for_update() if lock else query, "repository", repository_id)


async def document_scope(
    conn: AsyncConnection, caller: Caller, repository_id: uuid.UUID | None, ref: Any, *, create: bool
) -> dict[str, Any] | None:
    """The owner columns of a new document: its repository's, or those ``ref`` names (see owner_scope)."""
    if repository_id is not None:
        # Locked: its document count changes; a document written into it takes a write grant on it.
        row = await fetch(conn, caller, repository_id, lock=create, write=True)
        return {"repository_id": repository_id, **{k: row[k] for k in ("user_id", "agent_id", "app_id")}}
    scope = await owner_scope(conn, caller, ref, create=create)
    return None if scope is None else {"repository_id": None, **scope}


async def recount(conn: AsyncConnection, caller: Caller, repository_id: uuid.UUID, **values: Any) -> None:
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
        row = (
            (await conn.execute(select(repo).where(*visibility.repositories(caller), repo.c.name == name)))
            .mappings()
            .first()
        )
    if row is not None:
        return Repository.model_validate(dict(row))
    return await create(rt.db, caller, RepositoryCreate(name=name, source=source, description=description))


async def get(db: Database, caller: Caller, repository_id: uuid.UUID) -> Repository:
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        return Repository.model_validate(await fetch(conn, caller, repository_id))


async def list_repositories(db: Database, caller: Caller, filters: RepositoryFilters) -> Page[Repository]:
    """Newest first."""
    caller.require("read")
    conds = visibility.repositories(caller) + matching(repo, filters, equal=("user_id", "agent_id", "app_id"))
    async with db.tenant(caller.org_id) as conn:
        query = select(repo).where(*conds)
        rows, next_cursor = await page_by_id(conn, query, repo, cursor=filters.cursor, limit=filters.limit)
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
        d = t.document
        held = select(d.c.id).where(d.c.org_id == caller.org_id, d.c.repository_id == repository_id)
        documents = list((await conn.execute(held)).scalars())
        await conn.execute(delete(repo).where(repo.c.org_id == caller.org_id, repo.c.id == repository_id))
        await events.redact(conn, caller.org_id, "document", [repository_id], key="repository_id")
        # The log keeps that they were deleted, not what they were: names, paths and titles go.
        await audit.redact(conn, caller.org_id, "document", documents)
        await audit.redact(conn, caller.org_id, "repository", [repository_id])
        details = {"documents": row["document_count"]}
        await audit.record(conn, caller, "repository.deleted", "repository", repository_id, details)

"""Sessions (conversations): create, read, list, update, close, delete."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import Conflict
from engramdb.schemas.common import Page
from engramdb.schemas.conversations import Session, SessionCreate, SessionFilters, SessionUpdate
from engramdb.services.core import audit, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.tenancy.directory import find_external_user, resolve_scope
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching, unexpired
from engramdb.storage.repo import one_or_404, page_by_id

s = t.session


async def fetch_visible(
    conn: AsyncConnection, caller: Caller, session_id: uuid.UUID, *, lock: bool = False, write: bool = False
) -> dict[str, Any]:
    """The session if this caller may see it, else 404 (another org's or another user's alike). One
    locked, or asked for ``write``, is about to change (or take messages): only write grants reach it."""
    query = select(s).where(*visibility.sessions(caller, write=write or lock), s.c.id == session_id)
    if lock:
        query = query.with_for_update()
    return await one_or_404(conn, query, "session", session_id)


async def create(db: Database, caller: Caller, body: SessionCreate) -> Session:
    caller.require("write")
    async with db.tenant(caller.org_id) as conn:
        scope = await resolve_scope(conn, caller, body, resource="sessions")
        stmt = (
            insert(s)
            .values(
                org_id=caller.org_id,
                id=ids.uuid7(),
                **scope,
                title=body.title,
                tags=body.tags,
                metadata=body.metadata,
                expires_at=body.expires_at,
            )
            .returning(s)
        )
        row = (await conn.execute(stmt)).mappings().one()
        await audit.record(conn, caller, "session.created", "session", row["id"])
    return Session.model_validate(dict(row))


async def get(db: Database, caller: Caller, session_id: uuid.UUID) -> Session:
    caller.require("read")
    async with db.read(caller.org_id) as conn:
        row = await fetch_visible(conn, caller, session_id)
    return Session.model_validate(row)


async def list_sessions(db: Database, caller: Caller, filters: SessionFilters) -> Page[Session]:
    caller.require("read")
    conds: list[ColumnElement[bool]] = visibility.sessions(caller)
    conds += matching(s, filters, equal=("user_id", "agent_id", "app_id", "status"))
    if not filters.include_expired:
        conds.append(unexpired(s))
    async with db.read(caller.org_id) as conn:
        if filters.external_user_id is not None:
            uid = await find_external_user(conn, caller, filters.external_user_id)
            if uid is None:
                return Page[Session](data=[], next_cursor=None)
            conds.append(s.c.user_id == uid)
        query = select(s).where(*conds)
        rows, next_cursor = await page_by_id(conn, query, s, cursor=filters.cursor, limit=filters.limit)
    return Page[Session](data=[Session.model_validate(r) for r in rows], next_cursor=next_cursor)


async def update_session(db: Database, caller: Caller, session_id: uuid.UUID, body: SessionUpdate) -> Session:
    caller.require("write")
    values = body.model_dump(exclude_unset=True)
    for key in ("metadata",):
        if key in values and values[key] is None:
            values[key] = {}
    if "tags" in values and values["tags"] is None:
        values["tags"] = []
    async with db.tenant(caller.org_id) as conn:
        await fetch_visible(conn, caller, session_id, lock=True)
        stmt = (
            update(s)
            .where(s.c.org_id == caller.org_id, s.c.id == session_id)
            .values(**values, updated_at=func.now())
            .returning(s)
        )
        row = (await conn.execute(stmt)).mappings().one()
        await audit.record(conn, caller, "session.updated", "session", session_id, {"fields": sorted(values)})
    return Session.model_validate(dict(row))


async def close(db: Database, caller: Caller, session_id: uuid.UUID) -> Session:
    """Close a session: it keeps its messages but takes no new ones. Closing twice is a no-op."""
    caller.require("write")
    async with db.tenant(caller.org_id) as conn:
        row = await fetch_visible(conn, caller, session_id, lock=True)
        if row["status"] != "closed":
            stmt = (
                update(s)
                .where(s.c.org_id == caller.org_id, s.c.id == session_id)
                .values(status="closed", closed_at=func.now(), updated_at=func.now())
                .returning(s)
            )
            row = dict((await conn.execute(stmt)).mappings().one())
            await audit.record(conn, caller, "session.closed", "session", session_id)
    return Session.model_validate(row)


def ensure_open(row: dict[str, Any]) -> None:
    if row["status"] == "closed":
        raise Conflict(f"session {row['id']} is closed and takes no new messages")

"""Insight sessions as their owner and their participants see them: open, read, list, close, release, and
the insights a session released. Every read here is of the caller's own organization (its invitation row,
its copy of each insight); what crosses organizations is ``compute``'s."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.errors import PermissionDenied
from engramdb.schemas.common import Page, PageQuery
from engramdb.schemas.insights import Insight, InsightSession, InsightSessionCreate, InsightSessionFilters
from engramdb.services.core.caller import Caller
from engramdb.services.insights import compute, mechanism
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.repo import one_or_404, page_by_id

p = t.federated_participant
s = t.federated_session
ai = t.aggregated_insight


def _view(
    session_id: uuid.UUID,
    d: dict[str, Any],
    *,
    status: str,
    role: str,
    participants: int | None,
    invited: list[uuid.UUID] | None,
    closed_at: Any,
) -> InsightSession:
    sens = mechanism.sensitivity(len(d["buckets"]), d["bound"])
    scale = mechanism.scale_for(sens, d["epsilon"])
    return InsightSession.model_validate(
        {
            **d,
            "id": session_id,
            "sensitivity": sens,
            "noise_scale": scale,
            "expected_abs_error": mechanism.expected_abs_error(scale),
            "status": status,
            "role": role,
            "participants": participants,
            "invited_org_ids": invited,
            "closed_at": closed_at,
        }
    )


async def invitation(conn: AsyncConnection, caller: Caller, session_id: uuid.UUID) -> dict[str, Any]:
    """The caller's organization's row for the session (it exists once invited): 404 for any other org."""
    query = select(p).where(p.c.org_id == caller.org_id, p.c.session_id == session_id, p.c.team_id.is_(None))
    return await one_or_404(conn, query, "insight session", session_id)


async def _role(conn: AsyncConnection, caller: Caller, row: dict[str, Any]) -> str:
    if row["session_org_id"] == caller.org_id:
        return "owner"
    joined = select(p.c.id).where(
        p.c.org_id == caller.org_id, p.c.session_id == row["session_id"], p.c.status == "joined"
    )
    return "participant" if await conn.scalar(joined.limit(1)) is not None else "invited"


async def create(db: Database, caller: Caller, body: InsightSessionCreate) -> InsightSession:
    caller.require("admin")
    row = await compute.open_session(db, caller, body)
    d = compute.definition(row)
    return _view(
        row["id"],
        {**d, "created_at": row["created_at"]},
        status="open",
        role="owner",
        participants=0,
        invited=row["invited_org_ids"],
        closed_at=None,
    )


async def get(db: Database, caller: Caller, session_id: uuid.UUID) -> InsightSession:
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        row = await invitation(conn, caller, session_id)
        role = await _role(conn, caller, row)
        own: dict[str, Any] | None = None
        if role == "owner":
            query = select(s).where(s.c.org_id == caller.org_id, s.c.id == session_id)
            own = dict((await conn.execute(query)).mappings().one())
    count = await compute.participants(db, row["session_org_id"], session_id)
    return _view(
        session_id,
        row["definition"],
        status=row["session_status"],
        role=role,
        participants=count,
        invited=own["invited_org_ids"] if own else None,
        closed_at=own["closed_at"] if own else None,
    )


async def list_sessions(db: Database, caller: Caller, filters: InsightSessionFilters) -> Page[InsightSession]:
    """The sessions the caller's organization opened or is invited to, newest invitation first. A list
    leaves ``participants`` null (counting crosses organizations: get one session for its count)."""
    caller.require("read")
    conds: list[ColumnElement[bool]] = [p.c.org_id == caller.org_id, p.c.team_id.is_(None)]
    if filters.status is not None:
        conds.append(p.c.session_status == filters.status)
    async with db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(
            conn, select(p).where(*conds), p, cursor=filters.cursor, limit=filters.limit
        )
        views = []
        for row in rows:
            role = await _role(conn, caller, row)
            views.append(
                _view(
                    row["session_id"],
                    row["definition"],
                    status=row["session_status"],
                    role=role,
                    participants=None,
                    invited=None,
                    closed_at=None,
                )
            )
    return Page[InsightSession](data=views, next_cursor=next_cursor)


async def _owned(db: Database, caller: Caller, session_id: uuid.UUID, verb: str) -> None:
    async with db.tenant(caller.org_id) as conn:
        row = await invitation(conn, caller, session_id)
    if row["session_org_id"] != caller.org_id:
        raise PermissionDenied(f"only the organization that opened insight session {session_id} may {verb} it")


async def close(db: Database, caller: Caller, session_id: uuid.UUID) -> InsightSession:
    caller.require("admin")
    await _owned(db, caller, session_id, "close")
    await compute.close(db, caller, session_id)
    return await get(db, caller, session_id)


async def release(db: Database, caller: Caller, session_id: uuid.UUID) -> Insight:
    caller.require("admin")
    await _owned(db, caller, session_id, "release")
    return _insight(await compute.release(db, caller, session_id))


def _insight(row: dict[str, Any]) -> Insight:
    return Insight.model_validate(row)


async def list_insights(db: Database, caller: Caller, session_id: uuid.UUID, filters: PageQuery) -> Page[Insight]:
    """The session's releases, newest first: the owner's and each participant's own copies."""
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        await invitation(conn, caller, session_id)
        query = select(ai).where(ai.c.org_id == caller.org_id, ai.c.session_id == session_id)
        rows, next_cursor = await page_by_id(conn, query, ai, cursor=filters.cursor, limit=filters.limit)
    return Page[Insight](data=[_insight(r) for r in rows], next_cursor=next_cursor)

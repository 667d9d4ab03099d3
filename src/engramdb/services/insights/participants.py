"""Joining and leaving a session, and a participant's own record (its reputation): its participations, the
budget each spent and the releases it was counted in. All of it lives in the participant's organization and
is read by it alone.

Only a ``federated`` organization joins as itself, only a ``federated`` team as a team (an admin names it:
``team_id``), and an organization takes part either as itself or through its teams, not both: its rows would
count twice. A participation that left cannot join again (its spent budget stays on record)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import Conflict, NotFound, ValidationFailed
from engramdb.schemas.common import Page, PageQuery
from engramdb.schemas.insights import (
    TEAM_QUERIES,
    Contribution,
    InsightSession,
    Participation,
    ParticipationCreate,
    ParticipationFilters,
)
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.services.insights import sessions
from engramdb.services.insights.sessions import invitation
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.repo import one_or_404, page_by_id

p = t.federated_participant
c = t.federated_contribution


def _public(row: dict[str, Any]) -> Participation:
    budget = row["epsilon_budget"]
    remaining = None if budget is None else max(0.0, budget - row["epsilon_spent"])
    d = row["definition"]
    return Participation.model_validate(
        {**row, "topic": d["topic"], "query": d["query"], "epsilon_remaining": remaining}
    )


async def _isolation(conn: AsyncConnection, caller: Caller, team_id: uuid.UUID | None) -> None:
    if team_id is None:
        o = t.organization
        level = await conn.scalar(select(o.c.isolation).where(o.c.org_id == caller.org_id))
        what, fix = "this organization's isolation", "set it to federated (PATCH the organization)"
    else:
        tm = t.team
        level = await conn.scalar(select(tm.c.isolation).where(tm.c.org_id == caller.org_id, tm.c.id == team_id))
        if level is None:
            raise NotFound(f"team {team_id} not found")
        what, fix = f"team {team_id}'s isolation", "set the team's isolation to federated"
    if level != "federated":
        raise Conflict(f"{what} is {level}: only a federated one joins federated insights; {fix} to join")


async def join(db: Database, caller: Caller, session_id: uuid.UUID, body: ParticipationCreate) -> Participation:
    caller.require("admin")
    team_id = caller.bind("team_id", body.team_id)
    async with db.tenant(caller.org_id) as conn:
        invited = await invitation(conn, caller, session_id)
        await _isolation(conn, caller, team_id)
        if invited["session_status"] != "open":
            raise Conflict(f"insight session {session_id} is closed: it takes no more participants")
        if team_id is not None and invited["definition"]["query"] not in TEAM_QUERIES:
            raise ValidationFailed(
                f"a team cannot join a {invited['definition']['query']} session: those rows belong to the whole "
                "organization; join as the organization",
                errors=[{"location": "body/team_id", "message": "teams join only memory_types and memory_categories"}],
            )
        mine = select(p).where(p.c.org_id == caller.org_id, p.c.session_id == session_id).with_for_update()
        rows = [dict(r) for r in (await conn.execute(mine)).mappings()]
        same = next((r for r in rows if r["team_id"] == team_id), None)
        other = [r for r in rows if r is not same and r["status"] == "joined"]
        if same is not None and same["status"] != "invited":
            state = "already joined" if same["status"] == "joined" else "left; a participation that left cannot rejoin"
            raise Conflict(f"this {'team' if team_id else 'organization'} {state} insight session {session_id}")
        if other and (team_id is None or any(r["team_id"] is None for r in other)):
            raise Conflict(
                "this organization takes part in the session as itself or through its teams, not both "
                "(its rows would count twice)"
            )
        values = dict(status="joined", epsilon_budget=body.epsilon_budget, joined_by=caller.key_id)
        stmt: Any
        if same is not None:
            stmt = update(p).where(p.c.org_id == caller.org_id, p.c.id == same["id"])
            stmt = stmt.values(**values, joined_at=func.now(), updated_at=func.now())
        else:
            copy = dict(
                session_org_id=invited["session_org_id"], session_id=session_id, definition=invited["definition"]
            )
            stmt = insert(p).values(org_id=caller.org_id, id=ids.uuid7(), team_id=team_id, **copy, **values)
            stmt = stmt.values(joined_at=func.now())
        row = dict((await conn.execute(stmt.returning(p))).mappings().one())
        details = {
            "session_id": str(session_id),
            "team_id": team_id and str(team_id),
            "epsilon_budget": body.epsilon_budget,
        }
        await audit.record(conn, caller, "insights.joined", "federated_participant", row["id"], details)
    return _public(row)


async def leave(db: Database, caller: Caller, session_id: uuid.UUID) -> InsightSession:
    """Leave: the caller's team's participation (a team-bound key), else the organization's and its teams'.
    Later releases leave their data out; what earlier releases spent stays on record. Answers the session."""
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        await invitation(conn, caller, session_id)
        conds: list[ColumnElement[bool]] = [
            p.c.org_id == caller.org_id,
            p.c.session_id == session_id,
            p.c.status == "joined",
        ]
        if caller.team_id is not None:
            conds.append(p.c.team_id == caller.team_id)
        stmt = update(p).where(*conds).values(status="left", left_at=func.now(), updated_at=func.now())
        rows = [dict(r) for r in (await conn.execute(stmt.returning(p))).mappings()]
        if not rows:
            raise Conflict(f"nothing to leave: no participation of yours in insight session {session_id} is joined")
        for row in rows:
            await audit.record(conn, caller, "insights.left", "federated_participant", row["id"])
    return await sessions.get(db, caller, session_id)


async def list_participations(db: Database, caller: Caller, filters: ParticipationFilters) -> Page[Participation]:
    """The caller's participations (a team-bound key: its team's), invitations included."""
    caller.require("read")
    conds: list[ColumnElement[bool]] = [p.c.org_id == caller.org_id]
    if caller.team_id is not None:
        conds.append(p.c.team_id == caller.team_id)
    if filters.status is not None:
        conds.append(p.c.status == filters.status)
    async with db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(
            conn, select(p).where(*conds), p, cursor=filters.cursor, limit=filters.limit
        )
    return Page[Participation](data=[_public(r) for r in rows], next_cursor=next_cursor)


async def list_contributions(
    db: Database, caller: Caller, participation_id: uuid.UUID, filters: PageQuery
) -> Page[Contribution]:
    """The releases a participation was counted in, newest first: ε spent, and what it contributed."""
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        own = [p.c.org_id == caller.org_id, p.c.id == participation_id]
        if caller.team_id is not None:
            own.append(p.c.team_id == caller.team_id)
        await one_or_404(conn, select(p.c.id).where(*own), "participation", participation_id)
        query = select(c).where(c.c.org_id == caller.org_id, c.c.participant_id == participation_id)
        rows, next_cursor = await page_by_id(conn, query, c, cursor=filters.cursor, limit=filters.limit)
    return Page[Contribution](data=[Contribution.model_validate(r) for r in rows], next_cursor=next_cursor)

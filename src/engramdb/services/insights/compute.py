"""The only code that reads or writes across organizations (``tests/services/insights/test_boundary.py``
keeps it so): it alone calls :meth:`Database.federated`, whose one transaction enters one organization at a
time, so row-level security still confines every statement to a single organization.

What crosses: a new session's invitations (a row in each invited organization), the count of a session's
participants, closing a session (its copies in each participant's rows) and a release: each participant's
counts (aggregates only, never rows), clamped and summed, released with noise (``mechanism``), each
participant's budget spent and its contribution recorded in its own organization, and the insight written
to the owner and every participant.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, insert, select, update

from engramdb import ids
from engramdb.errors import Conflict, NotFound
from engramdb.schemas.insights import InsightSessionCreate
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.services.insights import mechanism, queries
from engramdb.storage import tables as t
from engramdb.storage.database import Database

s = t.federated_session
p = t.federated_participant
_SLACK = 1e-9  # float sums of ε: a budget of 5.0 spent five times by 1.0 is exactly spent, not overspent


def definition(row: dict[str, Any]) -> dict[str, Any]:
    """What a participant keeps of the session it was invited to (the definition never changes)."""
    keys = ("topic", "description", "query", "buckets", "bound", "epsilon", "min_participants", "created_at")
    return {k: (row[k].isoformat() if k == "created_at" else row[k]) for k in keys}


async def open_session(db: Database, caller: Caller, body: InsightSessionCreate) -> dict[str, Any]:
    """The session, in the caller's organization, and an invitation in each invited one (the caller's too)."""
    invited = list(dict.fromkeys([caller.org_id, *body.invited_org_ids]))
    session_id = ids.uuid7()
    async with db.federated() as fed:
        conn = await fed.enter(caller.org_id)
        values = body.model_dump(exclude={"invited_org_ids"})
        stmt = insert(s).values(
            org_id=caller.org_id, id=session_id, invited_org_ids=invited, created_by=caller.key_id, **values
        )
        row = dict((await conn.execute(stmt.returning(s))).mappings().one())
        details = {"query": body.query, "invited": len(invited) - 1}
        await audit.record(conn, caller, "insights.session_opened", "federated_session", session_id, details)
        copy = definition(row)
        for org_id in invited:
            conn = await fed.enter(org_id)
            if await conn.scalar(select(t.organization.c.org_id).where(t.organization.c.org_id == org_id)) is None:
                raise NotFound(f"organization {org_id} not found")
            invitation = dict(org_id=org_id, id=ids.uuid7(), session_org_id=caller.org_id, session_id=session_id)
            await conn.execute(insert(p).values(**invitation, definition=copy))
    return row


async def participants(db: Database, owner_id: uuid.UUID, session_id: uuid.UUID) -> int:
    """How many participations of the session are joined now (a count, never who)."""
    async with db.federated() as fed:
        conn = await fed.enter(owner_id)
        invited = await conn.scalar(select(s.c.invited_org_ids).where(s.c.org_id == owner_id, s.c.id == session_id))
        total = 0
        for org_id in invited or ():
            conn = await fed.enter(org_id)
            total += await conn.scalar(select(func.count()).where(*_joined(org_id, owner_id, session_id))) or 0
    return total


def _joined(org_id: uuid.UUID, owner_id: uuid.UUID, session_id: uuid.UUID) -> list[Any]:
    return [p.c.org_id == org_id, p.c.session_org_id == owner_id, p.c.session_id == session_id, p.c.status == "joined"]


async def close(db: Database, caller: Caller, session_id: uuid.UUID) -> dict[str, Any]:
    """Close the caller's session: no more joins or releases. Closing a closed session changes nothing."""
    async with db.federated() as fed:
        conn = await fed.enter(caller.org_id)
        row = await _session_for_update(conn, caller.org_id, session_id)
        if row["status"] == "closed":
            return row
        stmt = update(s).where(s.c.org_id == caller.org_id, s.c.id == session_id)
        now = func.now()
        row = dict(
            (await conn.execute(stmt.values(status="closed", closed_at=now, updated_at=now).returning(s)))
            .mappings()
            .one()
        )
        await audit.record(conn, caller, "insights.session_closed", "federated_session", session_id)
        for org_id in row["invited_org_ids"]:
            conn = await fed.enter(org_id)
            mine = update(p).where(
                p.c.org_id == org_id, p.c.session_org_id == caller.org_id, p.c.session_id == session_id
            )
            await conn.execute(mine.values(session_status="closed", updated_at=func.now()))
    return row


async def _session_for_update(conn: Any, owner_id: uuid.UUID, session_id: uuid.UUID) -> dict[str, Any]:
    query = select(s).where(s.c.org_id == owner_id, s.c.id == session_id).with_for_update()
    found = (await conn.execute(query)).mappings().first()
    if found is None:
        raise NotFound(f"insight session {session_id} not found")
    return dict(found)


async def release(db: Database, caller: Caller, session_id: uuid.UUID) -> dict[str, Any]:
    """Release the session's histogram once, under ε-DP, from the participants whose budget allows it.

    Refused (409, nothing spent) when the session is closed, or when fewer than its minimum of participants
    have ε left: a participation whose remaining budget is below the session's ε is left out of every
    release from then on, so its data is never used past the budget it set."""
    async with db.federated() as fed:
        conn = await fed.enter(caller.org_id)
        session = await _session_for_update(conn, caller.org_id, session_id)
        if session["status"] != "open":
            raise Conflict(f"insight session {session_id} is closed: it releases nothing more")
        epsilon, least = float(session["epsilon"]), int(session["min_participants"])
        joined: list[dict[str, Any]] = []
        for org_id in session["invited_org_ids"]:
            conn = await fed.enter(org_id)
            rows = await conn.execute(select(p).where(*_joined(org_id, caller.org_id, session_id)).with_for_update())
            joined += [dict(r) for r in rows.mappings()]
        able = [r for r in joined if r["epsilon_budget"] - r["epsilon_spent"] >= epsilon - _SLACK]
        if len(able) < least:
            raise Conflict(_refusal(len(joined), len(able), least, epsilon))
        buckets, bound = list(session["buckets"]), int(session["bound"])
        contributions: list[list[int]] = []
        for r in able:
            conn = await fed.enter(r["org_id"])
            counted = await conn.execute(queries.counts(session["query"], r["org_id"], r["team_id"], buckets))
            contributions.append(mechanism.clamp({b: n for b, n in counted.all()}, buckets, bound))
        totals = [sum(column) for column in zip(*contributions, strict=True)]
        noisy = mechanism.release(totals, sens=mechanism.sensitivity(len(buckets), bound), epsilon=epsilon)
        insight_id = ids.uuid7()
        for r, clamped in zip(able, contributions, strict=True):
            conn = await fed.enter(r["org_id"])
            mine = update(p).where(p.c.org_id == r["org_id"], p.c.id == r["id"])
            spent = {"epsilon_spent": p.c.epsilon_spent + epsilon, "releases": p.c.releases + 1}
            await conn.execute(mine.values(**spent, last_released_at=func.now(), updated_at=func.now()))
            record = dict(org_id=r["org_id"], id=ids.uuid7(), participant_id=r["id"], insight_id=insight_id)
            mark = dict(buckets_present=sum(1 for v in clamped if v > 0), clamped_total=sum(clamped))
            place = dict(session_org_id=caller.org_id, session_id=session_id, epsilon=epsilon)
            await conn.execute(insert(t.federated_contribution).values(**record, **mark, **place))
        histogram = [{"bucket": b, "count": n} for b, n in zip(buckets, noisy.counts, strict=True)]
        insight = {
            "id": insight_id,
            "session_org_id": caller.org_id,
            "session_id": session_id,
            "topic": session["topic"],
            "query": session["query"],
            "histogram": histogram,
            "mechanism": noisy.mechanism,
            "epsilon": noisy.epsilon,
            "delta": noisy.delta,
            "bound": bound,
            "sensitivity": noisy.sensitivity,
            "scale": noisy.scale,
            "participants": len(able),
        }
        for org_id in dict.fromkeys([r["org_id"] for r in joined]):
            if org_id != caller.org_id:
                conn = await fed.enter(org_id)
                await conn.execute(insert(t.aggregated_insight).values(org_id=org_id, **insight))
        conn = await fed.enter(caller.org_id)
        stmt = insert(t.aggregated_insight).values(org_id=caller.org_id, **insight).returning(t.aggregated_insight)
        row = dict((await conn.execute(stmt)).mappings().one())
        details = {"epsilon": epsilon, "participants": len(able)}
        await audit.record(conn, caller, "insights.released", "aggregated_insight", insight_id, details)
    return row


def _refusal(joined: int, able: int, least: int, epsilon: float) -> str:
    if able < joined:
        return (
            f"release refused: the privacy budget of {joined - able} of the {joined} participants is spent "
            f"(a release spends ε={epsilon:g} of each), and the {able} with budget left are fewer than the "
            f"{least} this session needs"
        )
    return f"release refused: {joined} participants joined; this session releases nothing with fewer than {least}"

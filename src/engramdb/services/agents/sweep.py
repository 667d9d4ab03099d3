"""The periodic sweep (every ``ENGRAM_AGENT_SWEEP_S``, in each serving process): agents silent for longer
than ``heartbeat_interval_s × AGENT_OFFLINE_GRACE`` become ``offline`` (raising ``agent.offline``),
tasks whose lease ran out go back to their queue (or fail, attempts spent) in organizations nobody is
claiming from (an agent that goes offline loses its leases at once), and task events no stream has
numbered yet are numbered (``history.sequence``). Reading an agent computes ``offline`` too, so a status
is never staler than the read; the sweep is what persists it and raises the event. Several processes
may sweep at once: each change is one conditional UPDATE, so an agent goes offline (and its event is
raised) once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import INTERVAL

from engramdb import limits
from engramdb.services.agents import claims, history
from engramdb.services.agents.heartbeats import OFFLINE_EVENT
from engramdb.services.core import events
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.storage import tables as t

_log = logging.getLogger("engramdb")


async def offline(rt: Runtime) -> int:
    """Mark silent agents offline, in every organization; returns how many. The leases of the tasks they
    are working on run out with it (the lease pass, :func:`leases`, then returns those tasks to their
    queue): a worker that stopped beating is taken as gone, whatever lease it asked for."""
    a, k = t.agent, t.task
    grace = func.make_interval(0, 0, 0, 0, 0, 0, a.c.heartbeat_interval_s * limits.AGENT_OFFLINE_GRACE, type_=INTERVAL)
    stmt = (
        update(a)
        .where(a.c.status.in_(("active", "busy", "error")), a.c.last_heartbeat_at < func.now() - grace)
        .values(status="offline")
        .returning(a.c.org_id, a.c.id, a.c.last_heartbeat_at)
    )
    async with rt.db.system() as conn:
        rows = (await conn.execute(stmt)).all()
        for org_id, agent_id, last in rows:
            data: dict[str, Any] = {
                "object": "agent",
                "action": "offline",
                "agent": {"id": agent_id, "status": "offline", "last_heartbeat_at": last},
            }
            await events.emit(conn, org_id=org_id, event_type=OFFLINE_EVENT, data=data)
        if rows:
            held = tuple_(k.c.org_id, k.c.claimed_by).in_([(org_id, agent_id) for org_id, agent_id, _ in rows])
            ended = update(k).where(held, k.c.state == "working", k.c.lease_expires_at > func.now())
            await conn.execute(ended.values(lease_expires_at=func.now()))
    return len(rows)


async def leases(rt: Runtime) -> int:
    """Expire the leases that ran out, organization by organization (each in its own tenant transaction)."""
    k = t.task
    due = select(k.c.org_id).where(k.c.state == "working", k.c.lease_expires_at < func.now()).distinct()
    async with rt.db.system() as conn:
        orgs = list((await conn.execute(due)).scalars())
    expired = 0
    for org_id in orgs:
        caller = Caller(org_id=org_id, scopes=frozenset({"write"}), actor="sweep")
        async with rt.db.tenant(org_id) as conn:
            moves = await claims.expire(conn, caller)
            await history.record(conn, caller, moves)
        if moves:
            history.wake(rt, org_id)
        expired += len(moves)
    return expired


async def number(rt: Runtime) -> int:
    """Number the task events still without a ``seq``, organization by organization (an organization whose
    counter another transaction holds is left to it, or to the next sweep)."""
    e = t.task_event
    async with rt.db.system() as conn:
        orgs = list((await conn.execute(select(e.c.org_id).where(e.c.seq.is_(None)).distinct())).scalars())
    numbered = 0
    for org_id in orgs:
        numbered += await history.sequence(rt.db, org_id) or 0
    return numbered


async def sweep(rt: Runtime) -> tuple[int, int]:
    """Agents marked offline, leases expired (events numbered on the way)."""
    gone, expired = await offline(rt), await leases(rt)
    await number(rt)
    return gone, expired


async def run(rt: Runtime) -> None:
    """The serving process's background loop."""
    while True:
        try:
            await sweep(rt)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep serving; the next sweep tries again
            _log.exception("the agent sweep failed; will retry")
        await asyncio.sleep(rt.settings.agent_sweep_s)

"""Heartbeats: an agent says it is alive, and what it is doing, in one row update.

A beat writes no audit row and no history: at thousands of agents beating every few seconds the log
would be nothing else. The one exception is a beat that brings an offline agent back: it raises
``agent.online`` (the sweep, ``sweep.py``, raised ``agent.offline`` when it went silent).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import limits
from engramdb.errors import NotFound
from engramdb.schemas.agents import Heartbeat, HeartbeatAck
from engramdb.services.core import events, visibility
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.database import Database

ONLINE_EVENT = "agent.online"
OFFLINE_EVENT = "agent.offline"


async def beat(db: Database, caller: Caller, agent_id: uuid.UUID, body: Heartbeat) -> HeartbeatAck:
    caller.require("write")
    async with db.tenant(caller.org_id) as conn:
        return await _beat(conn, caller, agent_id, body)


async def _beat(conn: AsyncConnection, caller: Caller, agent_id: uuid.UUID, body: Heartbeat) -> HeartbeatAck:
    a = t.agent
    before = a.alias("before")
    values: dict[str, object] = {"status": body.status, "last_heartbeat_at": func.now()}
    if body.metrics is not None:
        values["metrics"] = body.metrics
    # The FROM row is read from the statement's snapshot: the status before this beat, in the same statement.
    stmt = (
        update(a)
        .where(*visibility.agents(caller), a.c.id == agent_id)
        .where(before.c.org_id == a.c.org_id, before.c.id == a.c.id)
        .values(values)
        .returning(a.c.last_heartbeat_at, a.c.heartbeat_interval_s, before.c.status, before.c.last_heartbeat_at)
    )
    row = (await conn.execute(stmt)).one_or_none()
    if row is None:
        raise NotFound(f"agent {agent_id} not found")
    now, interval, was, last = row
    grace = timedelta(seconds=interval * limits.AGENT_OFFLINE_GRACE)
    silent = last is not None and now - last > grace and was in ("active", "busy", "error")
    if was == "offline" or silent:
        data = {"agent": {"id": agent_id, "status": body.status, "last_heartbeat_at": now}, "action": "online"}
        await events.emit(conn, org_id=caller.org_id, event_type=ONLINE_EVENT, data=data)
    return HeartbeatAck(
        agent_id=agent_id,
        status=body.status,
        last_heartbeat_at=now,
        next_heartbeat_before=now + grace,
    )


async def exists(conn: AsyncConnection, caller: Caller, agent_id: uuid.UUID) -> None:
    """404 unless the key may act for ``agent_id``."""
    a = t.agent
    if await conn.scalar(select(a.c.id).where(*visibility.agents(caller), a.c.id == agent_id)) is None:
        raise NotFound(f"agent {agent_id} not found")

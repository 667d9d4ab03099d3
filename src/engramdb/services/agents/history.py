"""A task's history and the organization's event sequence.

Every task event and every agent message takes its ``seq`` from the organization's ``stream_seq`` row
(:func:`next_seqs`). The row stays locked until the transaction commits, so the organization's events
commit in ``seq`` order: a stream that sent ``seq`` n has seen every event before it, and resuming after
n (``Last-Event-ID``) misses nothing. Callers take their seqs last in a transaction, to hold the lock
for as short a time as they can.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.schemas.agents import TaskEvent, TaskEventFilters
from engramdb.schemas.common import Page
from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.storage import notify
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.pagination import decode_cursor, encode_cursor
from engramdb.storage.repo import one_or_404

TASKS_TOPIC = "tasks"
INBOX_TOPIC = "inbox"


async def next_seqs(conn: AsyncConnection, org_id: uuid.UUID, count: int) -> list[int]:
    """``count`` consecutive seqs of the organization, locked to this transaction until it ends."""
    s = t.stream_seq
    stmt = (
        pg_insert(s)
        .values(org_id=org_id, last_seq=count)
        .on_conflict_do_update(index_elements=[s.c.org_id], set_={"last_seq": s.c.last_seq + count})
        .returning(s.c.last_seq)
    )
    last = int((await conn.execute(stmt)).scalar_one())
    return list(range(last - count + 1, last + 1))


def event(
    caller: Caller,
    task: dict[str, Any],
    kind: str,
    to_state: str,
    *,
    from_state: str | None = None,
    agent_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One history row about ``task`` (a row as read), to be written by :func:`record`."""
    return {
        "task_id": task["id"],
        "queue": task["queue"],
        "kind": kind,
        "from_state": from_state,
        "to_state": to_state,
        "agent_id": agent_id,
        "key_id": caller.key_id,
        "actor": caller.actor,
        "details": details or {},
    }


# Seqs, history rows and the wake-up in one statement: the counter row is then locked for one round trip
# and the commit, not for three (claims of one organization serialize on it; see bench/agents.py).
_RECORD = text(
    """
WITH s AS (
  INSERT INTO stream_seq AS q (org_id, last_seq) VALUES (:org, :n)
  ON CONFLICT (org_id) DO UPDATE SET last_seq = q.last_seq + :n
  RETURNING last_seq
), ins AS (
  INSERT INTO task_event (org_id, seq, task_id, queue, kind, from_state, to_state, agent_id, key_id, actor, details)
  SELECT :org, s.last_seq - :n + r.i, r.task_id, r.queue, r.kind, r.from_state, r.to_state, r.agent_id, r.key_id,
         r.actor, r.details
  FROM s, jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
    i bigint, task_id uuid, queue text, kind text, from_state text, to_state text, agent_id uuid, key_id uuid,
    actor text, details jsonb)
  RETURNING seq
)
SELECT max(seq), pg_notify(:channel, :prefix || max(seq)) FROM ins
"""
)


async def record(conn: AsyncConnection, caller: Caller, rows: list[dict[str, Any]]) -> list[int]:
    """Write history rows with fresh seqs and wake the task streams; call it last in the transaction."""
    if not rows:
        return []
    numbered = [{"i": i, **row} for i, row in enumerate(rows, start=1)]
    params = {
        "org": caller.org_id,
        "n": len(rows),
        "rows": json.dumps(to_jsonable_python(numbered)),
        "channel": notify.CHANNEL,
        "prefix": notify.payload(caller.org_id, TASKS_TOPIC, 0)[:-1],
    }
    last = int((await conn.execute(_RECORD, params)).scalar_one())
    return list(range(last - len(rows) + 1, last + 1))


async def list_events(db: Database, caller: Caller, task_id: uuid.UUID, filters: TaskEventFilters) -> Page[TaskEvent]:
    """A task's history, oldest first."""
    caller.require("read")
    e, k = t.task_event, t.task
    async with db.tenant(caller.org_id) as conn:
        await one_or_404(conn, select(k.c.id).where(*visibility.tasks(caller), k.c.id == task_id), "task", task_id)
        query = select(e).where(e.c.org_id == caller.org_id, e.c.task_id == task_id)
        if filters.cursor is not None:
            (after,) = decode_cursor(filters.cursor, size=1)
            query = query.where(e.c.seq > int(str(after)))
        rows = [dict(r) for r in (await conn.execute(query.order_by(e.c.seq).limit(filters.limit + 1))).mappings()]
    next_cursor = encode_cursor([str(rows[filters.limit - 1]["seq"])]) if len(rows) > filters.limit else None
    return Page[TaskEvent](data=[TaskEvent.model_validate(r) for r in rows[: filters.limit]], next_cursor=next_cursor)

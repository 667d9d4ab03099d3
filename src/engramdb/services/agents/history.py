"""A task's history, and the organization's event sequence that live streams resume by.

Every task event and every agent message has a ``seq``: a number of the organization's, increasing, and
committed in increasing order, so that a stream that sent ``seq`` n has seen every event before it and
resuming after n (``Last-Event-ID``) misses nothing. The numbers come from the organization's
``stream_seq`` row, whose lock is held until the numbering transaction commits. Two ways:

* **Task events are numbered after they commit** (:func:`sequence`). :func:`record` writes them with no
  ``seq``, and once they are committed :func:`wake` tells the task streams; a stream (or the sweep, every
  few seconds) then locks the counter, numbers every committed event still without one, in the order they
  were written, and commits.
  So claims, completions and other task changes never wait on each other for a number: one short
  transaction numbers whatever a busy queue wrote meanwhile, however many writers there were. (When the
  number was taken in the writing transaction, every claim of an organization queued on the counter row
  until the previous one had committed: ``bench/agents.py``, docs/benchmarks.md.)
* **Agent messages take theirs as they are written** (:func:`next_seqs`, held to the commit): the sender
  gets it back, and inbox pages and cursors are in that order. Messages are sent far less often than
  tasks change hands.

A task's own history is in ``id`` order (the task's row lock orders its events); ``seq`` is null in it
for the few milliseconds before an event is numbered.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import exists, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.schemas.agents import TaskEvent, TaskEventFilters
from engramdb.schemas.common import Page
from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
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


# History rows in one statement, in the order given (``id`` follows it); no number yet (:func:`sequence`).
_RECORD = text(
    """
INSERT INTO task_event (org_id, task_id, queue, kind, from_state, to_state, agent_id, key_id, actor, details)
SELECT :org, r.task_id, r.queue, r.kind, r.from_state, r.to_state, r.agent_id, r.key_id, r.actor, r.details
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
  i bigint, task_id uuid, queue text, kind text, from_state text, to_state text, agent_id uuid, key_id uuid,
  actor text, details jsonb)
ORDER BY r.i
"""
)


async def record(conn: AsyncConnection, caller: Caller, rows: list[dict[str, Any]]) -> None:
    """Write history rows; once the transaction has committed, :func:`wake` the task streams."""
    if not rows:
        return
    numbered = [{"i": i, **row} for i, row in enumerate(rows)]
    await conn.execute(_RECORD, {"org": caller.org_id, "rows": json.dumps(to_jsonable_python(numbered))})


def wake(rt: Runtime, org_id: uuid.UUID) -> None:
    """After a commit that recorded task events: wake the organization's task streams, in every process
    (they number the new events, then send them). Not a ``NOTIFY`` in the writing transaction: that
    would make the writers' commits take turns (``storage/notify.py``)."""
    rt.listener.announce(rt.db, org_id, TASKS_TOPIC)


# Under the counter's lock (taken by the statement before, so this one's snapshot holds every event
# committed until then): number the events without a seq in the order they were written, then move the
# counter past them, and wake the task streams.
_NUMBER = text(
    """
WITH pending AS (
  SELECT id, row_number() OVER (ORDER BY id) AS n FROM task_event WHERE org_id = :org AND seq IS NULL
), numbered AS (
  UPDATE task_event AS e SET seq = :last + p.n FROM pending AS p
  WHERE e.org_id = :org AND e.id = p.id
  RETURNING e.seq
), moved AS (
  UPDATE stream_seq SET last_seq = (SELECT max(seq) FROM numbered)
  WHERE org_id = :org AND EXISTS (SELECT 1 FROM numbered)
  RETURNING last_seq
)
SELECT (SELECT count(*) FROM numbered), (SELECT pg_notify(:channel, :payload) FROM moved)
"""
)


async def sequence(db: Database, org_id: uuid.UUID) -> int | None:
    """Number the organization's committed task events that have no ``seq`` yet; how many, or None when
    another transaction holds the counter (it is numbering, or a message is being sent): try again soon.

    The counter row is taken with ``SKIP LOCKED``, never waited for: a stream must not hold a database
    connection while another process numbers the same events."""
    e, s = t.task_event, t.stream_seq
    async with db.tenant(org_id) as conn:
        pending = exists().where(e.c.org_id == org_id, e.c.seq.is_(None))
        if not await conn.scalar(select(pending)):
            return 0
        locked = select(s.c.last_seq).where(s.c.org_id == org_id).with_for_update(skip_locked=True)
        last = await conn.scalar(locked)
        if last is None:  # the organization's first number, or the row is held by another
            created = pg_insert(s).values(org_id=org_id, last_seq=0).on_conflict_do_nothing().returning(s.c.last_seq)
            last = await conn.scalar(created)
            if last is None:
                return None
        params = {
            "org": org_id,
            "last": int(last),
            "channel": notify.CHANNEL,
            "payload": notify.payload(org_id, TASKS_TOPIC, 0),
        }
        count, _ = (await conn.execute(_NUMBER, params)).one()
    return int(count)


async def list_events(db: Database, caller: Caller, task_id: uuid.UUID, filters: TaskEventFilters) -> Page[TaskEvent]:
    """A task's history, oldest first."""
    caller.require("read")
    e, k = t.task_event, t.task
    async with db.tenant(caller.org_id) as conn:
        await one_or_404(conn, select(k.c.id).where(*visibility.tasks(caller), k.c.id == task_id), "task", task_id)
        query = select(e).where(e.c.org_id == caller.org_id, e.c.task_id == task_id)
        if filters.cursor is not None:
            (after,) = decode_cursor(filters.cursor, size=1)
            query = query.where(e.c.id > int(str(after)))
        rows = [dict(r) for r in (await conn.execute(query.order_by(e.c.id).limit(filters.limit + 1))).mappings()]
    next_cursor = encode_cursor([str(rows[filters.limit - 1]["id"])]) if len(rows) > filters.limit else None
    return Page[TaskEvent](data=[TaskEvent.model_validate(r) for r in rows[: filters.limit]], next_cursor=next_cursor)

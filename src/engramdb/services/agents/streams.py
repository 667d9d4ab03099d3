"""Live streams: an agent's inbox and a queue's task events, as they happen, resumable.

Each stream is a loop over its table: send the rows after the last ``seq`` sent, then wait until the
process's one ``LISTEN`` connection (``storage/notify.py``, the runtime's ``listener``) says something
new was committed for it, or ``STREAM_KEEPALIVE_S`` passes, and look again. The database is the only
source: a notification carries no data, so one lost (a dropped LISTEN connection) delays an event by
at most the keep-alive, and a client that reconnects with ``Last-Event-ID`` gets every row after it,
in order (``history.py`` says why ``seq`` order is commit order). A task stream numbers the task events
written since it last looked before it reads them (``history.sequence``).

The checks (the key, the agent) run when a stream is opened, before the response starts, so a refusal
is an ordinary error answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import func, select

from engramdb import limits
from engramdb.schemas.agents import InboxItem, StreamEvent, TaskEvent
from engramdb.services.agents import history, mailboxes
from engramdb.services.agents.heartbeats import exists as agent_exists
from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.storage import tables as t

BATCH = 200
# Another transaction holding the counter (numbering, or sending a message) keeps it a few milliseconds.
NUMBERING_RETRY_S = 0.005
NUMBERING_TRIES = 200
Fetch = Callable[[int], Awaitable[list[StreamEvent]]]


async def _follow(rt: Runtime, caller: Caller, topic: str, after: int, fetch: Fetch) -> AsyncIterator[StreamEvent]:
    last = after
    async with rt.listener.subscribe(caller.org_id, topic) as woke:
        while True:
            woke.clear()  # before reading: a commit during the read wakes the next wait
            batch = await fetch(last)
            for item in batch:
                last = item.id
                yield item
            if len(batch) >= BATCH:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woke.wait(), timeout=limits.STREAM_KEEPALIVE_S)


async def inbox(rt: Runtime, caller: Caller, agent_id: uuid.UUID, after: int | None) -> AsyncIterator[StreamEvent]:
    """An agent's messages as they arrive. Resuming (``after``: the last event id seen) sends every message
    after it; a first connection (no ``after``) starts with the messages not yet acknowledged."""
    caller.require("read")
    async with rt.db.tenant(caller.org_id) as conn:
        await agent_exists(conn, caller, agent_id)
    d = t.agent_message_delivery
    first = after is None

    async def fetch(last: int) -> list[StreamEvent]:
        nonlocal first
        query = mailboxes.inbox_query(caller, agent_id).where(d.c.seq > last)
        if first:
            query = query.where(d.c.acked_at.is_(None))
            first = False
        async with rt.db.tenant(caller.org_id) as conn:
            rows = [dict(r) for r in (await conn.execute(query.limit(BATCH))).mappings()]
            new = [r["id"] for r in rows if r["delivered_at"] is None]
            await mailboxes.mark_delivered(conn, caller, agent_id, new)
        items = [InboxItem.model_validate(r) for r in rows]
        return [StreamEvent(id=i.seq, event="message", data=i.model_dump(mode="json")) for i in items]

    return _follow(rt, caller, mailboxes.inbox_topic(agent_id), after or 0, fetch)


async def tasks(rt: Runtime, caller: Caller, queue: str | None, after: int | None) -> AsyncIterator[StreamEvent]:
    """Task events (created, claimed, completed …) of the tasks the key sees, one queue or all. Resuming
    (``after``) sends every event after it; a first connection starts with what happens next."""
    caller.require("read")
    e, k = t.task_event, t.task
    if after is None:
        await _number(rt, caller)
        async with rt.db.tenant(caller.org_id) as conn:
            after = int(
                await conn.scalar(select(func.coalesce(func.max(e.c.seq), 0)).where(e.c.org_id == caller.org_id)) or 0
            )

    async def fetch(last: int) -> list[StreamEvent]:
        await _number(rt, caller)
        query = select(e).where(
            e.c.org_id == caller.org_id,
            e.c.seq > last,
            e.c.task_id.in_(select(k.c.id).where(*visibility.tasks(caller))),
        )
        if queue is not None:
            query = query.where(e.c.queue == queue)
        async with rt.db.tenant(caller.org_id) as conn:
            rows = (await conn.execute(query.order_by(e.c.seq).limit(BATCH))).mappings().all()
        found = [TaskEvent.model_validate(dict(r)) for r in rows]  # numbered: seq > last
        return [StreamEvent(id=ev.seq or 0, event=f"task.{ev.kind}", data=ev.model_dump(mode="json")) for ev in found]

    return _follow(rt, caller, history.TASKS_TOPIC, after, fetch)


async def _number(rt: Runtime, caller: Caller) -> None:
    """Number the task events committed since the last look. When another transaction holds the counter,
    wait for it: a message being sent would not wake this stream again, and a number taken meanwhile by
    another stream's process wakes it anyway. After a second of trying, the next wake-up tries again."""
    for _ in range(NUMBERING_TRIES):
        if await history.sequence(rt.db, caller.org_id) is not None:
            return
        await asyncio.sleep(NUMBERING_RETRY_S)

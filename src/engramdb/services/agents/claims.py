"""Claiming tasks with a lease, and what the claimer does with it: extend it, complete or fail the task.

* :func:`claim` hands the calling agent the next eligible task in one transaction: ``submitted``, on the
  queue asked for (any by default), assigned to the agent or to nobody, every required capability among
  the agent's, every dependency ``completed``; highest priority first, then oldest. ``FOR UPDATE SKIP
  LOCKED`` lets any number of claimers take different tasks at once without waiting on each other.
  A claim counts an attempt and returns a fresh ``lease_id``: extending, completing and failing need it,
  so a claimer whose lease ran out and passed to another cannot complete the task under it.
* Leases run out by themselves: every claim first returns the organization's expired tasks to the queue
  (:func:`expire`, attempt counted, ``failed`` once ``max_attempts`` are spent), and the periodic sweep
  (``sweep.py``) does the same for queues nobody is claiming from.
* Completing can record the result as an episodic memory with provenance to the task (``remember``).
  Completing again under the same lease (a client retrying a completion whose answer it lost) returns
  the completed task and changes nothing, so the SDK retries claims and completions without an
  ``Idempotency-Key`` record: a claim whose answer was lost is retried as a new claim, and the lost
  one's lease runs out like a dead worker's.

A claim is five statements in one transaction (the agent, expired leases, the claim itself as one
``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``, the webhook outbox, the history), a
completion four; neither waits for another claim or completion (``history.py``: events are numbered
after they commit).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, case, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.errors import Conflict, NotFound, ValidationFailed
from engramdb.schemas.agents import LeaseExtend, Task, TaskClaim, TaskClaimed, TaskComplete, TaskFail
from engramdb.schemas.memories import MemoryCreate
from engramdb.services.agents import history
from engramdb.services.agents.tasks import event_data, public, returning
from engramdb.services.core import events, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.memory import memories
from engramdb.storage import tables as t

k = t.task


def _seconds(value: int) -> Any:
    return func.make_interval(0, 0, 0, 0, 0, 0, value)


async def expire(conn: AsyncConnection, caller: Caller) -> list[dict[str, Any]]:
    """Return the organization's tasks whose lease ran out to the queue (or fail them, their attempts
    spent); the history rows to record. Rows another transaction holds are left to it."""
    before = k.alias("before")
    due = (
        select(k.c.id)
        .where(k.c.org_id == caller.org_id, k.c.state == "working", k.c.lease_expires_at < func.now())
        .with_for_update(skip_locked=True)
    )
    spent = k.c.attempts >= k.c.max_attempts
    stmt = (
        update(k)
        .where(k.c.org_id == caller.org_id, k.c.id.in_(due.scalar_subquery()))
        .where(before.c.org_id == k.c.org_id, before.c.id == k.c.id)
        .values(
            state=case((spent, "failed"), else_="submitted"),
            claimed_by=case((spent, k.c.claimed_by), else_=None),
            lease_id=None,
            lease_expires_at=None,
            error=case((spent, func.concat("the lease ran out after ", k.c.attempts, " attempts")), else_=k.c.error),
            completed_at=case((spent, func.now()), else_=None),
            updated_at=func.now(),
        )
        .returning(k.c.id, k.c.queue, k.c.state, k.c.attempts, before.c.claimed_by)
    )
    rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
    moves = []
    for row in rows:
        details = {"attempts": row["attempts"]}
        moves.append(
            history.event(
                caller,
                row,
                "lease_expired",
                row["state"],
                from_state="working",
                agent_id=row["claimed_by"],
                details=details,
            )
        )
        kind = "task.failed" if row["state"] == "failed" else "task.lease_expired"
        data = {
            "object": "task",
            "action": "lease_expired",
            "task": {"id": row["id"], "queue": row["queue"], **details},
        }
        await events.emit(conn, org_id=caller.org_id, event_type=kind, data=data)
    return moves


def _eligible(agent_id: uuid.UUID, capabilities: list[str], queue: str | None) -> Any:
    d, p = t.task_dependency, k.alias("p")
    waiting = exists(
        select(d.c.task_id)
        .select_from(d.join(p, and_(p.c.org_id == d.c.org_id, p.c.id == d.c.depends_on_id)))
        .where(d.c.org_id == k.c.org_id, d.c.task_id == k.c.id, p.c.state != "completed")
    )
    conds = [
        k.c.state == "submitted",
        (k.c.assigned_to.is_(None)) | (k.c.assigned_to == agent_id),
        k.c.required_capabilities.contained_by(capabilities),
        ~waiting,
    ]
    if queue is not None:
        conds.append(k.c.queue == queue)
    return conds


async def _claimant(conn: AsyncConnection, caller: Caller, agent_id: uuid.UUID) -> list[str]:
    """The claiming agent's capabilities: 404 unless it is the organization's, 403 unless the key may act
    for it."""
    a = t.agent
    found = (
        await conn.execute(select(a.c.capabilities).where(a.c.org_id == caller.org_id, a.c.id == agent_id))
    ).first()
    if found is None:
        raise NotFound(f"agent {agent_id} not found")
    await visibility.confine_write(conn, caller, agent_id=agent_id)
    return list(found.capabilities)


async def claim(rt: Runtime, caller: Caller, body: TaskClaim) -> TaskClaimed:
    caller.require("write")
    agent_id = caller.bind("agent_id", body.agent_id)
    if agent_id is None:
        raise ValidationFailed(
            "name the claiming agent (agent_id), or claim with a key bound to it",
            errors=[{"location": "body/agent_id", "message": "required for a key not bound to an agent"}],
        )
    async with rt.db.tenant(caller.org_id) as conn:
        own = await _claimant(conn, caller, agent_id)
        moves = await expire(conn, caller)
        capabilities = list(body.capabilities) if body.capabilities is not None else own
        pick = (
            select(k.c.id)
            .where(*visibility.tasks(caller), *_eligible(agent_id, capabilities, body.queue))
            .order_by(k.c.priority.desc(), k.c.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=k)
            .scalar_subquery()
        )
        stmt = (
            update(k)
            .where(k.c.org_id == caller.org_id, k.c.id == pick)
            .values(
                state="working",
                claimed_by=agent_id,
                lease_id=uuid.uuid4(),
                lease_expires_at=func.now() + _seconds(body.lease_s),
                attempts=k.c.attempts + 1,
                updated_at=func.now(),
            )
        )
        row = (await conn.execute(returning(stmt))).mappings().first()
        task = Task.model_validate(dict(row)) if row is not None else None
        if task is not None:
            await events.emit(conn, org_id=caller.org_id, event_type="task.claimed", data=event_data(task, "claimed"))
            details = {"attempt": task.attempts, "lease_s": body.lease_s}
            moves.append(
                history.event(
                    caller, dict(row), "claimed", "working", from_state="submitted", agent_id=agent_id, details=details
                )
            )
        await history.record(conn, caller, moves)
    if moves:
        history.wake(rt, caller.org_id)
    return TaskClaimed(task=task)


async def _held(
    conn: AsyncConnection, caller: Caller, task_id: uuid.UUID, lease_id: uuid.UUID | None, *, done: str | None = None
) -> dict[str, Any]:
    """The task, locked, if ``lease_id`` holds it: a working task needs its current, unexpired lease; a
    task waiting for input takes its claim's lease or none. A task already in state ``done`` under this
    very lease is returned as it is (the caller's repeat of a change that landed)."""
    ran_out = (k.c.lease_expires_at < func.now()).label("lease_ran_out")
    query = select(k, ran_out).where(*visibility.tasks(caller), k.c.id == task_id).with_for_update(of=k)
    found = (await conn.execute(query)).mappings().first()
    if found is None:
        raise NotFound(f"task {task_id} not found")
    row = dict(found)
    state = row["state"]
    if state == "input-required" and (lease_id is None or lease_id == row["lease_id"]):
        return row
    if state == done and lease_id is not None and lease_id == row["lease_id"]:
        return row
    if state != "working":
        raise Conflict(f"task {task_id} is {state}, not working")
    if lease_id is None:
        raise ValidationFailed(
            "send the lease_id your claim returned", errors=[{"location": "body/lease_id", "message": "required"}]
        )
    if lease_id != row["lease_id"]:
        raise Conflict(f"task {task_id} is held by another lease (yours ran out and the task was claimed again)")
    if row["lease_ran_out"]:
        raise Conflict(f"the lease on task {task_id} has run out: claim a task again")
    return row


async def extend(rt: Runtime, caller: Caller, task_id: uuid.UUID, body: LeaseExtend) -> Task:
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        row = await _held(conn, caller, task_id, body.lease_id)
        if row["state"] != "working":
            raise Conflict(f"task {task_id} is {row['state']}: only a working task has a lease to extend")
        stmt = (
            update(k)
            .where(k.c.org_id == caller.org_id, k.c.id == task_id)
            .values(lease_expires_at=func.now() + _seconds(body.lease_s), updated_at=func.now())
        )
        task = Task.model_validate(dict((await conn.execute(returning(stmt))).mappings().one()))
        details = {"lease_s": body.lease_s}
        move = history.event(
            caller, row, "lease_extended", "working", from_state="working", agent_id=row["claimed_by"], details=details
        )
        await history.record(conn, caller, [move])
    history.wake(rt, caller.org_id)
    return task


async def complete(rt: Runtime, caller: Caller, task_id: uuid.UUID, body: TaskComplete) -> Task:
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        row = await _held(conn, caller, task_id, body.lease_id, done="completed")
        if row["state"] == "completed":  # a repeat: the first completion stands
            return await public(conn, caller, task_id)
        stmt = (
            update(k)
            .where(k.c.org_id == caller.org_id, k.c.id == task_id)
            .values(
                state="completed",
                result=body.result,
                lease_expires_at=None,
                completed_at=func.now(),
                updated_at=func.now(),
            )
        )
        task = Task.model_validate(dict((await conn.execute(returning(stmt))).mappings().one()))
        await events.emit(conn, org_id=caller.org_id, event_type="task.completed", data=event_data(task, "completed"))
        move = history.event(caller, row, "completed", "completed", from_state=row["state"], agent_id=row["claimed_by"])
        await history.record(conn, caller, [move])
    history.wake(rt, caller.org_id)
    if body.remember:
        task = await _remember(rt, caller, task, body)
    return task


async def _remember(rt: Runtime, caller: Caller, task: Task, body: TaskComplete) -> Task:
    """The result as an episodic memory of the task's user, filed by the agent that did it, with the task
    as its provenance (``metadata.task_id``); the task then names it (``result_memory_id``). Written as the
    task's own system caller: the memory belongs to the task's user, whatever key completed it."""
    content = body.summary or f"Task '{task.title}' completed: {task.result}"
    system = Caller(
        org_id=caller.org_id,
        scopes=frozenset({"write"}),
        key_id=caller.key_id,
        actor=f"task:{task.id}",
        request_id=caller.request_id,
    )
    memory = await memories.create(
        rt,
        system,
        MemoryCreate(
            content=content[:8000],
            type="episodic",
            user_id=task.user_id,
            agent_id=task.claimed_by,
            importance=0.5,
            tags=["task", task.queue],
            metadata={"source": "task", "task_id": str(task.id), "queue": task.queue},
        ),
    )
    async with rt.db.tenant(caller.org_id) as conn:
        await conn.execute(
            update(k).where(k.c.org_id == caller.org_id, k.c.id == task.id).values(result_memory_id=memory.id)
        )
    return task.model_copy(update={"result_memory_id": memory.id})


async def fail(rt: Runtime, caller: Caller, task_id: uuid.UUID, body: TaskFail) -> Task:
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        row = await _held(conn, caller, task_id, body.lease_id)
        again = body.retry and row["attempts"] < row["max_attempts"]
        values: dict[str, Any] = {"error": body.error, "lease_expires_at": None, "updated_at": func.now()}
        if again:
            values.update(state="submitted", claimed_by=None, lease_id=None)
        else:
            values.update(state="failed", completed_at=func.now())
        stmt = update(k).where(k.c.org_id == caller.org_id, k.c.id == task_id).values(values)
        task = Task.model_validate(dict((await conn.execute(returning(stmt))).mappings().one()))
        if not again:
            await events.emit(conn, org_id=caller.org_id, event_type="task.failed", data=event_data(task, "failed"))
        details = {"error": body.error, "attempt": row["attempts"], "retry": again}
        move = history.event(
            caller, row, "failed", task.state, from_state=row["state"], agent_id=row["claimed_by"], details=details
        )
        await history.record(conn, caller, [move])
    history.wake(rt, caller.org_id)
    return task

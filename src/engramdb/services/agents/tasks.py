"""Tasks: create, read, list and change them; cancel. Claiming and leases are in ``claims.py``.

Every state change writes a ``task_event`` row (``history.py``) in its transaction; creating, changing
and cancelling a task are audited too (the claims and completions of a busy queue are in the history
only). A task's user cascades: erasing the user deletes their tasks and the tasks' history.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ARRAY, Select, Update, func, insert, literal, select, type_coerce, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import ReturningUpdate

from engramdb import ids
from engramdb.errors import Conflict, NotFound, ValidationFailed
from engramdb.schemas.agents import TERMINAL_STATES, Task, TaskCancel, TaskCreate, TaskFilters, TaskUpdate
from engramdb.schemas.common import Page
from engramdb.services.agents import history
from engramdb.services.core import audit, events, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy import directory
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching
from engramdb.storage.repo import page_by_id, require_row

k = t.task
_UUIDS = ARRAY(UUID(as_uuid=True))


def _depends_on() -> Any:
    d = t.task_dependency
    agg = func.coalesce(func.array_agg(d.c.depends_on_id), type_coerce(literal([], _UUIDS), _UUIDS))
    return (
        select(type_coerce(agg, _UUIDS))
        .where(d.c.org_id == k.c.org_id, d.c.task_id == k.c.id)
        .scalar_subquery()
        .label("depends_on")
    )


def returning(stmt: Update) -> ReturningUpdate[Any]:
    """``stmt`` (an UPDATE of tasks) answering the changed rows as :class:`Task` reads them, in the same
    statement (no second read)."""
    return stmt.returning(*k.c, _depends_on())


def selected(caller: Caller) -> Select[Any]:
    """The tasks ``caller`` sees, with the tasks each depends on."""
    return select(k, _depends_on()).where(*visibility.tasks(caller))


async def fetch(conn: AsyncConnection, caller: Caller, task_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any]:
    """A visible task as a row (locked for update when ``lock``), or 404."""
    query = select(k).where(*visibility.tasks(caller), k.c.id == task_id)
    row = (await conn.execute(query.with_for_update(of=k) if lock else query)).mappings().first()
    if row is None:
        raise NotFound(f"task {task_id} not found")
    return dict(row)


async def public(conn: AsyncConnection, caller: Caller, task_id: uuid.UUID) -> Task:
    row = (await conn.execute(selected(caller).where(k.c.id == task_id))).mappings().one()
    return Task.model_validate(dict(row))


def event_data(task: Task, action: str) -> dict[str, Any]:
    return {"object": "task", "action": action, "task": task.model_dump(exclude={"result", "description"})}


async def _check_citations(conn: AsyncConnection, caller: Caller, body: TaskCreate) -> None:
    cited = (
        (body.session_ids, t.session, visibility.sessions(caller), "session"),
        (body.memory_ids, t.memory, visibility.memories(caller), "memory"),
        (body.document_ids, t.document, visibility.documents(caller), "document"),
    )
    for wanted, table, conds, what in cited:
        if wanted:
            found = set((await conn.execute(select(table.c.id).where(*conds, table.c.id.in_(wanted)))).scalars())
            missing = [str(i) for i in wanted if i not in found]
            if missing:
                raise NotFound(f"{what} {missing[0]} not found")


async def create(rt: Runtime, caller: Caller, body: TaskCreate) -> Task:
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        user_id = await directory.resolve_user(conn, caller, user_id=body.user_id, external_user_id=None)
        created_by = caller.bind("agent_id", body.created_by)
        await require_row(conn, t.agent, caller.org_id, created_by, "agent")
        await visibility.confine_write(conn, caller, agent_id=created_by)
        await require_row(conn, t.agent, caller.org_id, body.assigned_to, "agent")
        depends_on = list(dict.fromkeys(body.depends_on))
        if depends_on:
            found = set(
                (await conn.execute(select(k.c.id).where(*visibility.tasks(caller), k.c.id.in_(depends_on)))).scalars()
            )
            missing = [str(i) for i in depends_on if i not in found]
            if missing:
                raise NotFound(f"task {missing[0]} not found")
        await _check_citations(conn, caller, body)
        task_id = ids.uuid7()
        values = body.model_dump(exclude={"depends_on", "user_id", "created_by"})
        stmt = insert(k).values(org_id=caller.org_id, id=task_id, user_id=user_id, created_by=created_by, **values)
        await conn.execute(stmt)
        if depends_on:
            rows = [{"org_id": caller.org_id, "task_id": task_id, "depends_on_id": d} for d in depends_on]
            await conn.execute(insert(t.task_dependency).values(rows))
        task = await public(conn, caller, task_id)
        await audit.record(conn, caller, "task.created", "task", task_id, {"queue": task.queue})
        await events.emit(conn, org_id=caller.org_id, event_type="task.created", data=event_data(task, "created"))
        row = task.model_dump()
        await history.record(conn, caller, [history.event(caller, row, "created", "submitted", agent_id=created_by)])
    history.wake(rt, caller.org_id)
    return task


async def get(db: Database, caller: Caller, task_id: uuid.UUID) -> Task:
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        await fetch(conn, caller, task_id)
        return await public(conn, caller, task_id)


async def list_tasks(db: Database, caller: Caller, filters: TaskFilters) -> Page[Task]:
    caller.require("read")
    conds = matching(k, filters, equal=("queue", "state", "assigned_to", "claimed_by", "created_by", "user_id"))
    async with db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(
            conn, selected(caller).where(*conds), k, cursor=filters.cursor, limit=filters.limit
        )
    return Page[Task](data=[Task.model_validate(r) for r in rows], next_cursor=next_cursor)


async def update_task(rt: Runtime, caller: Caller, task_id: uuid.UUID, body: TaskUpdate) -> Task:
    caller.require("write")
    change = body.model_dump(exclude_unset=True, exclude={"state", "lease_id", "note"})
    required = sorted(n for n in ("title", "priority", "max_attempts", "metadata") if n in change and change[n] is None)
    if required:
        errors = [{"location": f"body/{name}", "message": "may not be null"} for name in required]
        raise ValidationFailed(f"{', '.join(required)} may not be null: leave a field out to keep it", errors=errors)
    async with rt.db.tenant(caller.org_id) as conn:
        row = await fetch(conn, caller, task_id, lock=True)
        if change.get("assigned_to") is not None:
            await require_row(conn, t.agent, caller.org_id, change["assigned_to"], "agent")
        moves: list[dict[str, Any]] = []
        if body.state is not None and body.state != row["state"]:
            change.update(_move(row, body))
            details = {"note": body.note} if body.note else {}
            kind = "input_required" if body.state == "input-required" else "resubmitted"
            moves.append(
                history.event(
                    caller, row, kind, body.state, from_state=row["state"], agent_id=row["claimed_by"], details=details
                )
            )
        stmt = update(k).where(k.c.org_id == caller.org_id, k.c.id == task_id).values(**change, updated_at=func.now())
        await conn.execute(stmt)
        task = await public(conn, caller, task_id)
        await audit.record(
            conn, caller, "task.updated", "task", task_id, {"fields": sorted({*change} - {"lease_expires_at"})}
        )
        if body.state == "input-required" and moves:
            await events.emit(
                conn, org_id=caller.org_id, event_type="task.input_required", data=event_data(task, "input_required")
            )
        await history.record(conn, caller, moves)
    if moves:
        history.wake(rt, caller.org_id)
    return task


def _move(row: dict[str, Any], body: TaskUpdate) -> dict[str, Any]:
    """The columns a state change through ``update`` sets: a working task waits for input (its claimer
    keeps it, with no lease running), or a waiting task goes back to the queue."""
    if body.state == "input-required":
        if row["state"] != "working":
            raise Conflict(f"task {row['id']} is {row['state']}: only a working task can wait for input")
        if body.lease_id is None or body.lease_id != row["lease_id"]:
            raise Conflict(f"task {row['id']} is held by another lease: send the lease_id of your claim")
        return {"state": "input-required", "lease_expires_at": None}
    if row["state"] != "input-required":
        raise Conflict(f"task {row['id']} is {row['state']}: only a task waiting for input goes back to the queue")
    return {"state": "submitted", "claimed_by": None, "lease_id": None, "lease_expires_at": None}


async def cancel(rt: Runtime, caller: Caller, task_id: uuid.UUID, body: TaskCancel) -> Task:
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        row = await fetch(conn, caller, task_id, lock=True)
        if row["state"] in TERMINAL_STATES:
            raise Conflict(f"task {task_id} is already {row['state']}")
        stmt = (
            update(k)
            .where(k.c.org_id == caller.org_id, k.c.id == task_id)
            .values(state="canceled", lease_expires_at=None, completed_at=func.now(), updated_at=func.now())
        )
        await conn.execute(stmt)
        task = await public(conn, caller, task_id)
        details = {"reason": body.reason} if body.reason else {}
        await audit.record(conn, caller, "task.canceled", "task", task_id, details)
        await events.emit(conn, org_id=caller.org_id, event_type="task.canceled", data=event_data(task, "canceled"))
        await history.record(
            conn, caller, [history.event(caller, row, "canceled", "canceled", from_state=row["state"], details=details)]
        )
    history.wake(rt, caller.org_id)
    return task

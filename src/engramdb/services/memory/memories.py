"""Memories: create, read, list, update with history, state changes, soft and hard delete.

Nothing is overwritten without a trace: every change writes a ``memory_history`` row holding the old
and new values, who made it and under which request. A hard delete (erasure) removes the memory and
its history; the audit log keeps only that it happened.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import NotFound
from engramdb.schemas.common import Page
from engramdb.schemas.memories import (
    Memory,
    MemoryCreate,
    MemoryFilters,
    MemoryHistoryEntry,
    MemoryHistoryFilters,
    MemoryStateChange,
    MemoryUpdate,
)
from engramdb.services.conversation.sessions import fetch_visible
from engramdb.services.core import access, audit, events, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy.directory import find_external_user, resolve_scope
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching, unexpired
from engramdb.storage.repo import one_or_404, page_by_id, public_columns

mem = t.memory
hist = t.memory_history
# Fields a change can touch, as (wire name, column name); the history records these.
_TRACKED = (
    ("content", "content"),
    ("type", "memory_type"),
    ("importance", "importance"),
    ("tags", "tags"),
    ("categories", "categories"),
    ("metadata", "metadata"),
    ("expires_at", "expires_at"),
    ("state", "state"),
    ("session_id", "session_id"),
    ("team_id", "team_id"),
    ("agent_id", "agent_id"),
    ("app_id", "app_id"),
)


_DERIVED = frozenset({"content_hash", "embedding", "embedding_model"})


def _public(row: dict[str, Any]) -> Memory:
    return Memory.model_validate({**row, "type": row["memory_type"]})


def event_data(row: dict[str, Any], action: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A webhook event's ``data`` for a memory: the memory as the API shows it, and what happened."""
    return {"object": "memory", "action": action, **(details or {}), "memory": _public(row)}


def erased_data(row: dict[str, Any]) -> dict[str, Any]:
    """An erased memory's event names it and its owners, without its content (erasure sends none out)."""
    owners = {k: row[k] for k in ("id", "user_id", "agent_id", "team_id", "app_id", "session_id")}
    return {"object": "memory", "action": "purged", "memory": owners}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if isinstance(value, uuid.UUID) else value


def snapshot(row: dict[str, Any], fields: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    return {wire: _jsonable(row[col]) for wire, col in (fields or list(_TRACKED))}


async def write_history(
    conn: AsyncConnection,
    caller: Caller,
    row: dict[str, Any],
    action: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> None:
    await conn.execute(
        insert(hist).values(
            org_id=caller.org_id,
            id=ids.uuid7(),
            memory_id=row["id"],
            version=row["version"],
            action=action,
            old_values=old,
            new_values=new,
            actor_key_id=caller.key_id,
            actor=caller.actor,
            request_id=caller.request_id,
        )
    )


async def _visible(
    conn: AsyncConnection, caller: Caller, memory_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any]:
    # A memory locked is one about to change: only write grants reach it.
    query = select(*public_columns(mem)).where(*visibility.memories(caller, write=lock), mem.c.id == memory_id)
    return await one_or_404(conn, query.with_for_update() if lock else query, "memory", memory_id)


async def _check_sources(conn: AsyncConnection, caller: Caller, message_ids: list[uuid.UUID]) -> None:
    """Provenance must point at messages the caller can see (messages are partitioned: no FK can)."""
    wanted = set(message_ids)
    if not wanted:
        return
    msg = t.message
    query = select(msg.c.id).where(*visibility.messages(caller), msg.c.id.in_(wanted))
    found = set((await conn.execute(query)).scalars())
    missing = sorted(map(str, wanted - found))
    if missing:
        raise NotFound(f"source message {missing[0]} not found")


async def create(rt: Runtime, caller: Caller, body: MemoryCreate) -> Memory:
    caller.require("write")
    (vector,) = await rt.embedder.embed_batch([body.content], kind="passage")
    async with rt.db.tenant(caller.org_id) as conn:
        scope = await resolve_scope(conn, caller, body, resource="memories")
        if body.session_id is not None:
            await fetch_visible(conn, caller, body.session_id)
        await _check_sources(conn, caller, body.source_message_ids)
        stmt = (
            insert(mem)
            .values(
                org_id=caller.org_id,
                id=ids.uuid7(),
                **scope,
                session_id=body.session_id,
                content=body.content,
                memory_type=body.type,
                importance=body.importance,
                tags=body.tags,
                categories=body.categories,
                metadata=body.metadata,
                expires_at=body.expires_at,
                source_message_ids=body.source_message_ids,
                source="api",
                content_hash=hashlib.sha256(body.content.encode()).digest(),
                embedding=vector,
                embedding_model=rt.embedder.model,
                language=rt.settings.search_language,
            )
            .returning(*public_columns(mem))
        )
        row = dict((await conn.execute(stmt)).mappings().one())
        await write_history(conn, caller, row, "created", None, snapshot(row))
        await audit.record(conn, caller, "memory.created", "memory", row["id"])
        await events.emit(conn, org_id=caller.org_id, event_type="memory.created", data=event_data(row, "created"))
    return _public(row)


async def get(db: Database, caller: Caller, memory_id: uuid.UUID) -> Memory:
    caller.require("read")
    async with db.read(caller.org_id) as conn:
        row = await _visible(conn, caller, memory_id)
    return _public(row)


async def list_memories(db: Database, caller: Caller, filters: MemoryFilters) -> Page[Memory]:
    """Newest first. Without a ``state`` filter, deleted memories are left out; expired ones too unless asked."""
    caller.require("read")
    conds: list[ColumnElement[bool]] = visibility.memories(caller)
    conds += matching(
        mem, filters, equal=("user_id", "agent_id", "app_id", "session_id", "type"), columns={"type": "memory_type"}
    )
    conds.append(mem.c.state == filters.state if filters.state else mem.c.state != "deleted")
    if not filters.include_expired:
        conds.append(unexpired(mem))
    async with db.read(caller.org_id) as conn:
        if filters.external_user_id is not None:
            uid = await find_external_user(conn, caller, filters.external_user_id)
            if uid is None:
                return Page[Memory](data=[], next_cursor=None)
            conds.append(mem.c.user_id == uid)
        rows, next_cursor = await page_by_id(
            conn, select(*public_columns(mem)).where(*conds), mem, cursor=filters.cursor, limit=filters.limit
        )
    return Page[Memory](data=[_public(r) for r in rows], next_cursor=next_cursor)


async def apply_change(
    conn: AsyncConnection,
    caller: Caller,
    row: dict[str, Any],
    changes: dict[str, Any],
    action: str,
    *,
    reason: str | None = None,
) -> dict[str, Any]:
    """Write ``changes`` (column -> value) as a new version with its history row; no-op if nothing differs."""
    changed = {col: val for col, val in changes.items() if col not in _DERIVED and row[col] != val}
    if not changed:
        return row
    if "content" in changed:  # the hash and vector follow the text
        changed.update({col: changes[col] for col in _DERIVED if col in changes})
    fields = [(wire, col) for wire, col in _TRACKED if col in changed]
    old = snapshot(row, fields)
    stmt = (
        update(mem)
        .where(mem.c.org_id == caller.org_id, mem.c.id == row["id"])
        .values(**changed, version=mem.c.version + 1, updated_at=func.now())
        .returning(*public_columns(mem))
    )
    new_row = dict((await conn.execute(stmt)).mappings().one())
    new = snapshot(new_row, fields)
    details: dict[str, Any] = {"fields": [w for w, _ in fields]}
    if reason:
        new["reason"] = details["reason"] = reason
    await write_history(conn, caller, new_row, action, old, new)
    await audit.record(conn, caller, f"memory.{action}", "memory", row["id"], details)
    event = "memory.invalidated" if action == "deleted" else "memory.updated"
    await events.emit(conn, org_id=caller.org_id, event_type=event, data=event_data(new_row, action, details))
    return new_row


async def unlink(conn: AsyncConnection, caller: Caller, column: str, targets: list[uuid.UUID]) -> int:
    """Clear ``column`` on every memory of the org that points at one of ``targets`` (a session, team,
    agent or app being deleted), each as a recorded change. Returns how many memories changed."""
    if not targets:
        return 0
    query = (
        select(*public_columns(mem))
        .where(mem.c.org_id == caller.org_id, mem.c[column].in_(targets))
        .order_by(mem.c.id)
        .with_for_update()
    )
    rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    for row in rows:
        await apply_change(
            conn, caller, row, {column: None}, "unlinked", reason=f"{column.removesuffix('_id')} deleted"
        )
    return len(rows)


async def update_memory(rt: Runtime, caller: Caller, memory_id: uuid.UUID, body: MemoryUpdate) -> Memory:
    caller.require("write")
    wire = body.model_dump(exclude_unset=True)
    columns = dict(_TRACKED)
    changes = {columns[k]: v for k, v in wire.items()}
    for col, empty in (("tags", []), ("categories", []), ("metadata", {})):
        if col in changes and changes[col] is None:
            changes[col] = empty
    for col in ("content", "memory_type", "importance"):
        if col in changes and changes[col] is None:
            changes.pop(col)
    if "content" in changes:
        changes["content_hash"] = hashlib.sha256(changes["content"].encode()).digest()
        (changes["embedding"],) = await rt.embedder.embed_batch([changes["content"]], kind="passage")
        changes["embedding_model"] = rt.embedder.model
    async with rt.db.tenant(caller.org_id) as conn:
        row = await _visible(conn, caller, memory_id, lock=True)
        row = await apply_change(conn, caller, row, changes, "updated")
    return _public(row)


async def change_state(db: Database, caller: Caller, memory_id: uuid.UUID, body: MemoryStateChange) -> Memory:
    """Move a memory between active, paused, archived and deleted (soft); any state can be restored."""
    caller.require("write")
    changes: dict[str, Any] = {"state": body.state}
    async with db.tenant(caller.org_id) as conn:
        row = await _visible(conn, caller, memory_id, lock=True)
        now = await conn.scalar(select(func.now()))
        changes["archived_at"] = now if body.state == "archived" else None
        changes["deleted_at"] = now if body.state == "deleted" else None
        if row["state"] == body.state:
            return _public(row)
        action = "deleted" if body.state == "deleted" else "state_changed"
        row = await apply_change(conn, caller, row, changes, action, reason=body.reason)
    return _public(row)


async def purge(conn: AsyncConnection, caller: Caller, memory_id: uuid.UUID) -> dict[str, Any]:
    """The memory's part of its erasure (``governance.erase.memory``), in ``conn``'s transaction: delete a
    memory the caller sees for good, with its history and entity links (by cascade) and its access-log
    rows; the audit rows about it keep only that they happened, the webhook deliveries only its ids.
    Returns the row as it was."""
    row = await _visible(conn, caller, memory_id, lock=True)
    await conn.execute(delete(mem).where(mem.c.org_id == caller.org_id, mem.c.id == memory_id))
    await access.forget(conn, caller.org_id, [memory_id])
    await audit.redact(conn, caller.org_id, "memory", [memory_id])
    await events.redact(conn, caller.org_id, "memory", [memory_id])  # before its erasure event is raised
    return row


async def history(
    db: Database, caller: Caller, memory_id: uuid.UUID, filters: MemoryHistoryFilters
) -> Page[MemoryHistoryEntry]:
    """Oldest change first."""
    caller.require("read")
    cursor = filters.cursor
    async with db.tenant(caller.org_id) as conn:
        await _visible(conn, caller, memory_id)
        query = select(hist).where(hist.c.org_id == caller.org_id, hist.c.memory_id == memory_id)
        rows, next_cursor = await page_by_id(conn, query, hist, cursor=cursor, limit=filters.limit, descending=False)
    if not rows and cursor is None:
        raise NotFound(f"memory {memory_id} not found")
    return Page[MemoryHistoryEntry](data=[MemoryHistoryEntry.model_validate(r) for r in rows], next_cursor=next_cursor)

"""What retention does to one batch of rows, in the batch's transaction: the delete (or archive) and every
derived row and index that must follow, as the single-row erasures do it (``erase.memory``,
``erase.session``, a document's delete), but for up to a batch of rows at once.

* memories deleted: their history and entity links go by cascade, their access log is deleted, the audit
  rows and webhook deliveries about them keep only that they happened (their ids), every saved narrative
  version of their users goes (any may quote them) and a fresh one is queued; one ``memory.expired`` event
  per batch names them (ids and owners only);
* memories archived: state ``archived`` with ``archived_at``, a new version and a history row each (the
  batch's one audit row is the run's);
* messages deleted: their sessions are recounted and lose their summary (it may quote them; the next
  extraction starts a new one);
* sessions deleted: their messages go by cascade; memories drawn from them stay, unlinked (with history);
* documents deleted: their chunks and vectors go by cascade, their repositories are recounted, the audit
  rows and deliveries about them keep only ids;
* jobs deleted (finished ones only): with their queue rows, and the deliveries about them keep only ids;
* audit-log, access-log rows and webhook deliveries: deleted (the logs are exported first: ``archive.py``).
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.services.core import access, audit, events
from engramdb.services.core.caller import Caller
from engramdb.services.core.pseudonyms import among
from engramdb.services.core.runtime import Runtime
from engramdb.services.distill import narratives
from engramdb.services.memory import memories
from engramdb.storage import queue
from engramdb.storage import tables as t

EXPIRED_EVENT = "memory.expired"
OWNERS = ("id", "user_id", "agent_id", "team_id", "app_id", "session_id")


async def delete_memories(
    conn: AsyncConnection,
    rt: Runtime,
    caller: Caller,
    memory_ids: list[uuid.UUID],
    *,
    reason: str,
    policy_id: uuid.UUID | None,
) -> int:
    m, org = t.memory, caller.org_id
    stmt = delete(m).where(m.c.org_id == org, among(m.c.id, memory_ids)).returning(*(m.c[c] for c in OWNERS))
    gone = [dict(r) for r in (await conn.execute(stmt)).mappings()]
    if not gone:
        return 0
    erased = [r["id"] for r in gone]
    await access.forget(conn, org, erased)
    await audit.redact(conn, org, "memory", erased)
    await events.redact(conn, org, "memory", erased)
    await narratives.renew_many(conn, rt, org, sorted({r["user_id"] for r in gone if r["user_id"] is not None}))
    data = {"object": "memory", "action": "expired", "reason": reason, "policy_id": policy_id, "memories": gone}
    await events.emit(conn, org_id=org, event_type=EXPIRED_EVENT, data=data)
    return len(gone)


async def archive_memories(
    conn: AsyncConnection, caller: Caller, rows: list[dict[str, Any]], *, now: datetime, reason: str
) -> int:
    """``rows`` hold each memory's ``id`` and ``state`` as locked by the batch's query."""
    m, org = t.memory, caller.org_id
    before = {r["id"]: r["state"] for r in rows}
    stmt = (
        update(m)
        .where(m.c.org_id == org, among(m.c.id, list(before)))
        .values(state="archived", archived_at=now, deleted_at=None, version=m.c.version + 1, updated_at=func.now())
        .returning(m.c.id, m.c.version)
    )
    changed = (await conn.execute(stmt)).all()
    if not changed:
        return 0
    history = [
        {
            "org_id": org,
            "id": ids.uuid7(),
            "memory_id": r.id,
            "version": r.version,
            "action": "state_changed",
            "old_values": {"state": before[r.id]},
            "new_values": {"state": "archived", "reason": reason},
            "actor_key_id": caller.key_id,
            "actor": caller.actor,
            "request_id": caller.request_id,
        }
        for r in changed
    ]
    await conn.execute(insert(t.memory_history), history)
    return len(changed)


async def delete_messages(conn: AsyncConnection, caller: Caller, keys: list[tuple[uuid.UUID, datetime]]) -> int:
    msg, s, org = t.message, t.session, caller.org_id
    stmt = delete(msg).where(msg.c.org_id == org, tuple_(msg.c.id, msg.c.created_at).in_(keys))
    sessions = [r.session_id for r in (await conn.execute(stmt.returning(msg.c.session_id))).all()]
    if not sessions:
        return 0
    counted = select(func.count()).where(msg.c.org_id == s.c.org_id, msg.c.session_id == s.c.id).scalar_subquery()
    await conn.execute(
        update(s)
        .where(s.c.org_id == org, among(s.c.id, sorted(set(sessions))))
        .values(message_count=counted, summary=None, summary_seq=0, summary_updated_at=None, updated_at=func.now())
    )
    return len(sessions)


async def delete_sessions(conn: AsyncConnection, caller: Caller, session_ids: list[uuid.UUID]) -> int:
    s = t.session
    await memories.unlink(conn, caller, "session_id", session_ids)
    stmt = delete(s).where(s.c.org_id == caller.org_id, among(s.c.id, session_ids))
    return (await conn.execute(stmt)).rowcount


async def delete_documents(conn: AsyncConnection, caller: Caller, rows: list[dict[str, Any]]) -> int:
    """``rows`` hold each document's ``id`` and ``repository_id``; their repositories are locked first, in
    id order (the order every repository write takes), then the documents are deleted."""
    d, r, org = t.document, t.repository, caller.org_id
    repositories = sorted({row["repository_id"] for row in rows if row["repository_id"] is not None})
    if repositories:
        await conn.execute(
            select(r.c.id).where(r.c.org_id == org, among(r.c.id, repositories)).order_by(r.c.id).with_for_update()
        )
    stmt = delete(d).where(d.c.org_id == org, among(d.c.id, [row["id"] for row in rows]))
    gone = (await conn.execute(stmt.returning(d.c.id, d.c.repository_id))).all()
    erased = [g.id for g in gone]
    await events.redact(conn, org, "document", erased)
    await audit.redact(conn, org, "document", erased)
    for repository_id, count in sorted(Counter(g.repository_id for g in gone if g.repository_id).items()):
        recount = update(r).where(r.c.org_id == org, r.c.id == repository_id)
        await conn.execute(recount.values(document_count=r.c.document_count - count))
    return len(erased)


async def delete_jobs(conn: AsyncConnection, caller: Caller, job_ids: list[uuid.UUID]) -> int:
    j = t.job
    stmt = delete(j).where(j.c.org_id == caller.org_id, among(j.c.id, job_ids)).returning(j.c.id)
    gone = list((await conn.execute(stmt)).scalars())
    await queue.forget(conn, gone)
    await events.redact(conn, caller.org_id, "job", gone)
    return len(gone)


async def delete_keyed(conn: AsyncConnection, table: Table, org_id: uuid.UUID, keys: list[tuple[Any, ...]]) -> int:
    """Delete log rows by their primary key less ``org_id`` (``(id,)``, or ``(id, created_at)`` for a
    partitioned table, so each delete goes to its partition)."""
    names = [c.name for c in table.primary_key.columns if c.name != "org_id"]
    columns = tuple_(*(table.c[n] for n in names))
    stmt = delete(table).where(table.c.org_id == org_id, columns.in_(keys))
    return (await conn.execute(stmt)).rowcount

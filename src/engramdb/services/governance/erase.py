"""Erasure: the deletes that cascade across areas, each one operation in one transaction.

Deleting a directory item (team, user, agent, app) clears the columns that point at it, and a memory's
links change with history like any other change of a memory; deleting a user also unlinks other users'
memories drawn from the user's sessions, recounts the other sessions the user spoke in, redacts the
webhook deliveries about them and raises ``user.deleted``. Deleting a session keeps the memories drawn
from it (their link is cleared, with history). These cascades touch the directory, conversations and
memories at once, so they live here, above all three, instead of bouncing between them.

**What an erasure leaves.** No content and no id that links back to what was erased:

* a user: their rows go by cascade (sessions, messages, memories with history, facts, entities,
  narratives, documents, repositories, bound keys), and so do the rows that name them without a
  foreign key: their jobs and their sessions' (with the queue's rows), their memories' access log. The
  logs that must stay say what happened without saying to whom: every erased id in the audit log, the
  delivery log and other users' memory history becomes one pseudonym, a random UUID drawn for this
  erasure (``core/pseudonyms.py``), and the erasure is audited under it. Other sessions the user spoke
  in lose their summary, which may quote them (the next extraction starts a new one);
* a memory (:func:`memory`): its history, entity links and access log go; the audit rows about it
  keep only that they happened, the deliveries only its ids; its user's narrative versions, any of
  which may quote it, are deleted and a fresh one is queued.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.services.conversation import sessions
from engramdb.services.core import access, audit, events, idempotency
from engramdb.services.core.caller import Caller
from engramdb.services.core.pseudonyms import Pseudonym, among
from engramdb.services.core.runtime import Runtime
from engramdb.services.distill import narratives
from engramdb.services.memory import memories
from engramdb.services.tenancy import directory
from engramdb.services.tenancy.directory import Resource
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.repo import one_or_404


@dataclass
class _UserErasure:
    """What deleting one user erases, gathered before their rows cascade away."""

    pseudonym: Pseudonym
    subjects: dict[str, list[uuid.UUID]]  # audit entity type -> the erased ids of that type
    jobs: list[uuid.UUID]
    recount: list[uuid.UUID]  # other sessions the user spoke in

    @property
    def counts(self) -> dict[str, int]:
        plural = {"session": "sessions", "memory": "memories", "fact": "facts", "document": "documents"}
        return {name: len(self.subjects[kind]) for kind, name in plural.items()}


async def directory_item(db: Database, caller: Caller, res: Resource[Any], item_id: uuid.UUID) -> None:
    """Delete one item. Deleting a user also deletes their sessions, messages, memories and keys, redacts
    the webhook deliveries about them, raises ``user.deleted`` and leaves their ids nowhere (see above)."""
    caller.require("admin")
    tbl = res.table
    async with db.tenant(caller.org_id) as conn:
        await one_or_404(
            conn,
            select(tbl.c.id).where(tbl.c.org_id == caller.org_id, tbl.c.id == item_id).with_for_update(),
            res.kind,
            item_id,
        )
        for ref_table, column in res.referrers:
            if ref_table is t.memory:  # a memory's links change with history, like any other change
                await memories.unlink(conn, caller, column, [item_id])
                continue
            await conn.execute(
                update(ref_table)
                .where(ref_table.c.org_id == caller.org_id, ref_table.c[column] == item_id)
                .values({column: None})
            )
        if res is directory.USERS:
            erasure = await _prepare_user_erasure(conn, caller, item_id)
            await _erase_user_events(conn, caller, item_id, erasure)
        await conn.execute(sql_delete(tbl).where(tbl.c.org_id == caller.org_id, tbl.c.id == item_id))
        if res is not directory.USERS:
            await audit.record(conn, caller, f"{res.kind}.deleted", res.kind, item_id)
            return
        await _recount(conn, caller, erasure.recount)
        await idempotency.forget_all(conn, caller.org_id)  # stored first answers may quote the user
        # Audited under the pseudonym, then every erased id in the log becomes it (the deleting key too,
        # should it be one of the user's).
        await audit.record(conn, caller, "user.deleted", "user", erasure.pseudonym.value, erasure.counts)
        await audit.pseudonymize(
            conn,
            caller.org_id,
            erasure.pseudonym,
            erasure.subjects,
            keys=erasure.subjects["api_key"],
            jobs=erasure.jobs,
        )


async def _prepare_user_erasure(conn: AsyncConnection, caller: Caller, user_id: uuid.UUID) -> _UserErasure:
    """Before a user's rows cascade away: other users' memories drawn from this user's sessions lose that
    link (recorded, under the pseudonym), the other sessions this user spoke in are noted to be recounted,
    the user's jobs (with their queue rows) and their memories' access log are deleted, and the ids to
    forget are gathered."""
    org = caller.org_id
    s, m, mem = t.session, t.message, t.memory
    own = list((await conn.execute(select(s.c.id).where(s.c.org_id == org, s.c.user_id == user_id))).scalars())
    drawn = select(mem.c.id, mem.c.session_id).where(
        mem.c.org_id == org,
        among(mem.c.session_id, own),
        or_(mem.c.user_id.is_(None), mem.c.user_id != user_id),
    )
    rows = (await conn.execute(drawn)).all()
    unlinked = [r.id for r in rows]
    await memories.unlink(conn, caller, "session_id", sorted({r.session_id for r in rows}))
    others = select(m.c.session_id).distinct().where(m.c.org_id == org, m.c.user_id == user_id)
    others = others.where(~among(m.c.session_id, own))
    recount = list((await conn.execute(others)).scalars())

    def ids(table: Any, *conds: Any) -> Any:
        return select(table.c.id).where(table.c.org_id == org, *conds)

    f, e, d, r = t.fact, t.entity, t.document, t.repository
    entities = ids(e, e.c.user_id == user_id)
    repositories = ids(r, r.c.user_id == user_id)
    queries = {  # what goes with the user, by cascade: a fact on their entity, a document in their repository
        "user": ids(t.user_account, t.user_account.c.id == user_id),
        "session": ids(s, s.c.user_id == user_id),
        "message": ids(m, or_(m.c.user_id == user_id, among(m.c.session_id, own))),
        "memory": ids(mem, mem.c.user_id == user_id),
        "fact": ids(f, or_(f.c.user_id == user_id, f.c.subject_id.in_(entities), f.c.object_id.in_(entities))),
        "entity": entities,
        "document": ids(d, or_(d.c.user_id == user_id, d.c.repository_id.in_(repositories))),
        "repository": repositories,
        "api_key": ids(t.api_key, t.api_key.c.user_id == user_id),
    }
    subjects = {kind: list((await conn.execute(q)).scalars()) for kind, q in queries.items()}
    # Their jobs and their sessions' (with every queue row: a pending job must not run on erased data).
    j = t.job
    theirs = or_(j.c.user_id == user_id, among(j.c.session_id, own))
    gone_jobs = list((await conn.execute(sql_delete(j).where(j.c.org_id == org, theirs).returning(j.c.id))).scalars())
    await queue.forget(conn, gone_jobs)
    await access.forget(conn, org, subjects["memory"])
    pseudonym = Pseudonym.draw([i for group in subjects.values() for i in group] + gone_jobs)
    h = t.memory_history  # the unlinked memories' history names the erased sessions
    await pseudonym.rewrite(conn, h, ("old_values", "new_values"), h.c.org_id == org, among(h.c.memory_id, unlinked))
    return _UserErasure(pseudonym, subjects, gone_jobs, recount)


async def _recount(conn: AsyncConnection, caller: Caller, session_ids: list[uuid.UUID]) -> None:
    """The other sessions an erased user spoke in: their counts are redone, and their summaries, which
    may quote the user, are cleared (the next extraction starts a new one)."""
    if not session_ids:
        return
    s, m = t.session, t.message
    counted = select(func.count()).where(m.c.org_id == s.c.org_id, m.c.session_id == s.c.id).scalar_subquery()
    await conn.execute(
        update(s)
        .where(s.c.org_id == caller.org_id, among(s.c.id, session_ids))
        .values(message_count=counted, summary=None, summary_seq=0, summary_updated_at=None)
    )


async def _erase_user_events(conn: AsyncConnection, caller: Caller, user_id: uuid.UUID, erasure: _UserErasure) -> None:
    """Before a user's rows cascade away: the webhook deliveries about their memories, facts, documents
    and jobs keep only ids, every erased id in the delivery log becomes the pseudonym, and one
    ``user.deleted`` event (their id and a count only) says they are erased. That event names the user,
    or it would be of no use to whoever must erase them too; its delivery forgets them once sent
    (``events.settle``). One event, not a ``memory.invalidated`` per memory: a user's memories are not
    bounded in number."""
    await events.redact_user(conn, caller.org_id, user_id, erasure.pseudonym)
    data = {"object": "user", "action": "deleted", "user": {"id": user_id}, "memories": erasure.counts["memories"]}
    await events.emit(conn, org_id=caller.org_id, event_type=events.ERASURE_EVENT, data=data)


async def memory(rt: Runtime, caller: Caller, memory_id: uuid.UUID) -> None:
    """Erase a memory for good: with its history, entity links and access log; the audit rows about it
    keep only that they happened, the webhook deliveries about it only its ids; its user's narrative
    versions (any may quote it) are deleted and a fresh one is queued."""
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        row = await memories.purge(conn, caller, memory_id)
        await idempotency.forget_mentioning(conn, caller.org_id, str(memory_id))
        if row["user_id"] is not None:
            await narratives.renew(conn, rt, caller.org_id, row["user_id"])
        await audit.record(conn, caller, "memory.purged", "memory", memory_id)
        await events.emit(conn, org_id=caller.org_id, event_type="memory.invalidated", data=memories.erased_data(row))


async def session(db: Database, caller: Caller, session_id: uuid.UUID) -> None:
    """Delete a session and its messages. Memories drawn from it stay (their session link is cleared)."""
    caller.require("write")
    async with db.tenant(caller.org_id) as conn:
        await sessions.fetch_visible(conn, caller, session_id, lock=True)
        await memories.unlink(conn, caller, "session_id", [session_id])
        s = t.session
        await conn.execute(sql_delete(s).where(s.c.org_id == caller.org_id, s.c.id == session_id))
        await audit.record(conn, caller, "session.deleted", "session", session_id)

"""One subject's erasure, as steps in the erasing transaction: its rows in every table, what was derived
from them alone, and every trace of their ids in the rows that stay. The operations are in ``erase.py``;
what a subject holds is gathered by ``subjects.py``.

In order (:func:`run`):

1. **What stays but points at what goes.** Another user's memory drawn from an erased session loses that
   link, as a recorded change; a fact's ``session_id`` is cleared, and a fact version's link to an erased
   one (``replaces_id``, ``invalidated_by``); erased messages leave the provenance
   (``source_message_ids``) of the memories and facts that stay, erased sessions, memories and documents
   the tasks that stay; a reply to an erased message loses its ``parent_id``.
2. **The rows**, children first, each delete counted for the receipt: the legal holds (released),
   retention policies and access grants that name an erased user, agent, key, session or repository;
   the memories' access log, entity
   links and history, the memories; the facts; the entities the subject owned and those no memory or
   fact that stays mentions any more (an entity another's memory or fact still names stays); narratives;
   chunks, documents, repositories; messages; jobs with their uploads and queue rows; sessions; tasks
   with their events and dependencies; mailbox messages and their deliveries; keys; the subject's own row.
3. **What was derived from them**: the other sessions the erased messages were in are recounted and lose
   their summary (it may quote them); each other user whose memories or facts were erased gets a fresh
   narrative (any saved version may quote them; ``narratives.renew``).
4. **The logs**, which outlive the rows: every erased id becomes the erasure's pseudonym
   (``core/pseudonyms.py``) in the audit log (rows about erased rows are redacted), the webhook delivery
   log (deliveries about erased rows keep ids only), the history of memories that stay, the access log,
   task events and grants (as the key or agent that acted); the organization's kept idempotent answers go.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, exists, func, or_, select, text, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.services.core import audit, events, idempotency
from engramdb.services.core.caller import Caller
from engramdb.services.core.pseudonyms import Pseudonym, among
from engramdb.services.core.runtime import Runtime
from engramdb.services.distill import narratives
from engramdb.services.governance.subjects import Holdings
from engramdb.services.memory import memories
from engramdb.services.tenancy import directory
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.repo import public_columns

# Rows that exist only to point at a user, agent, key, session or repository: they go with it.
_POINTERS = (
    (t.legal_hold, "user_id", "user"),  # released holds only: an active one refuses the erasure
    (t.retention_policy, "user_id", "user"),
    (t.access_grant, "grantee_user_id", "user"),
    (t.access_grant, "owner_user_id", "user"),
    (t.access_grant, "grantee_agent_id", "agent"),
    (t.access_grant, "grantee_key_id", "api_key"),
    (t.access_grant, "session_id", "session"),
    (t.access_grant, "repository_id", "repository"),
)


@dataclass(frozen=True)
class Erased:
    pseudonym: Pseudonym
    counts: dict[str, int]  # table -> rows removed (none left out)


class _Deleter:
    """Deletes in one organization, counting the rows per table."""

    def __init__(self, conn: AsyncConnection, org_id: uuid.UUID) -> None:
        self.conn = conn
        self.org_id = org_id
        self.counts: Counter[str] = Counter()

    async def rows(self, table: Table, *conds: Any, returning: tuple[Any, ...] = ()) -> list[Any]:
        stmt = sql_delete(table).where(table.c.org_id == self.org_id, *conds)
        if returning:
            found = list((await self.conn.execute(stmt.returning(*returning))).all())
            self.counts[table.name] += len(found)
            return found
        self.counts[table.name] += (await self.conn.execute(stmt)).rowcount
        return []


async def run(conn: AsyncConnection, rt: Runtime, caller: Caller, held: Holdings) -> Erased:
    """Erase what ``held`` names (see above), in ``conn``'s transaction; the subject is locked."""
    org = caller.org_id
    ids = held.ids
    gone = _Deleter(conn, org)

    # 1. What stays but points at what goes.
    unlinked = await _unlink_drawn(conn, caller, ids["session"], ids["memory"])
    await _cut_facts_loose(conn, org, ids)
    await _strip(conn, org, t.memory, "source_message_ids", ids["message"], erasing=ids["memory"])
    for column, kind in (("session_ids", "session"), ("memory_ids", "memory"), ("document_ids", "document")):
        await _strip(conn, org, t.task, column, ids[kind], erasing=ids["task"])
    f, tk, m = t.fact, t.task, t.message
    stmt = update(tk).where(tk.c.org_id == org, among(tk.c.result_memory_id, ids["memory"]))
    await conn.execute(stmt.values(result_memory_id=None))
    if held.elsewhere:  # a reply that stays, to an erased message (both in a session that stays)
        replies = update(m).where(
            m.c.org_id == org, among(m.c.session_id, held.elsewhere), among(m.c.parent_id, ids["message"])
        )
        await conn.execute(replies.values(parent_id=None))

    # 2. The rows, children first; first those that only point at what goes (holds, policies, grants).
    for table, column, kind in _POINTERS:
        await gone.rows(table, among(table.c[column], ids[kind]))
    mem, me = t.memory, t.memory_entity
    await gone.rows(t.memory_access_log, among(t.memory_access_log.c.memory_id, ids["memory"]))
    owned = ids["entity"]
    links = await gone.rows(
        me, or_(among(me.c.memory_id, ids["memory"]), among(me.c.entity_id, owned)), returning=(me.c.entity_id,)
    )
    await gone.rows(t.memory_history, among(t.memory_history.c.memory_id, ids["memory"]))
    owners = await gone.rows(mem, among(mem.c.id, ids["memory"]), returning=(mem.c.user_id,))
    stated = await gone.rows(f, among(f.c.id, ids["fact"]), returning=(f.c.user_id, f.c.subject_id, f.c.object_id))
    await gone.rows(t.entity, among(t.entity.c.id, owned))
    named = {r.entity_id for r in links} | {r.subject_id for r in stated}
    named |= {r.object_id for r in stated if r.object_id is not None}
    ids["entity"] = owned + await _forget_orphans(conn, gone, named - set(owned), owned)
    await gone.rows(t.user_narrative, among(t.user_narrative.c.user_id, ids["user"]))
    oc = t.offloaded_context  # offloaded contexts go with their user, agent, session or task
    kinds = (("user_id", "user"), ("agent_id", "agent"), ("session_id", "session"), ("task_id", "task"))
    await gone.rows(oc, or_(*(among(oc.c[column], ids[kind]) for column, kind in kinds)))
    await gone.rows(t.chunk, among(t.chunk.c.document_id, ids["document"]))
    d, r = t.document, t.repository
    filed = await gone.rows(d, among(d.c.id, ids["document"]), returning=(d.c.repository_id,))
    await gone.rows(r, among(r.c.id, ids["repository"]))
    await _recount_repositories(conn, org, [x.repository_id for x in filed if x.repository_id is not None])
    await gone.rows(m, among(m.c.id, ids["message"]))
    await gone.rows(t.document_upload, among(t.document_upload.c.job_id, held.jobs))
    await gone.rows(t.job, among(t.job.c.id, held.jobs))
    gone.counts["procrastinate_jobs"] += await queue.forget(conn, held.jobs)
    await gone.rows(t.session, among(t.session.c.id, ids["session"]))
    te, dep = t.task_event, t.task_dependency
    await gone.rows(te, among(te.c.task_id, ids["task"]))
    await gone.rows(dep, or_(among(dep.c.task_id, ids["task"]), among(dep.c.depends_on_id, ids["task"])))
    await gone.rows(tk, among(tk.c.id, ids["task"]))
    am, amd = t.agent_message, t.agent_message_delivery
    await gone.rows(amd, or_(among(amd.c.message_id, ids["agent_message"]), among(amd.c.agent_id, ids["agent"])))
    await gone.rows(am, among(am.c.id, ids["agent_message"]))
    await gone.rows(t.api_key, among(t.api_key.c.id, ids["api_key"]))
    if held.kind in ("user", "agent"):
        res = directory.USERS if held.kind == "user" else directory.AGENTS
        await clear_referrers(conn, caller, res, held.subject_id)
        await gone.rows(res.table, res.table.c.id == held.subject_id)

    # 3. What was derived from them.
    await recount_sessions(conn, org, held.elsewhere)
    erased_users = set(ids["user"])
    for user_id in sorted({x.user_id for x in [*owners, *stated] if x.user_id is not None} - erased_users):
        gone.counts[t.user_narrative.name] += await narratives.renew(conn, rt, org, user_id)

    # 4. The logs.
    pseudonym = Pseudonym.draw(held.all_ids())
    await _pseudonymize_actors(conn, org, pseudonym, held)
    if unlinked:
        h = t.memory_history
        await pseudonym.rewrite(
            conn, h, ("old_values", "new_values"), h.c.org_id == org, among(h.c.memory_id, unlinked)
        )
    await events.redact_erased(conn, org, pseudonym, {**ids, "job": held.jobs}, owner=_owner(held))
    await audit.pseudonymize(conn, org, pseudonym, {**ids, "job": held.jobs}, keys=ids["api_key"], jobs=held.jobs)
    gone.counts["idempotency_key"] += await idempotency.forget_all(conn, org)
    return Erased(pseudonym, {table: n for table, n in sorted(gone.counts.items()) if n})


def _owner(held: Holdings) -> tuple[str, uuid.UUID] | None:
    """The id column by which every delivery about the subject's objects can be found, if there is one."""
    return (f"{held.kind}_id", held.subject_id) if held.kind in ("user", "agent") else None


async def clear_referrers(
    conn: AsyncConnection, caller: Caller, res: directory.Resource[Any], item_id: uuid.UUID
) -> None:
    """Clear the columns that point at a directory item about to be deleted; a memory's link changes with
    history, like any other change of a memory."""
    for ref_table, column in res.referrers:
        if ref_table is t.memory:
            await memories.unlink(conn, caller, column, [item_id])
            continue
        await conn.execute(
            update(ref_table)
            .where(ref_table.c.org_id == caller.org_id, ref_table.c[column] == item_id)
            .values({column: None})
        )


async def _unlink_drawn(
    conn: AsyncConnection, caller: Caller, sessions: list[uuid.UUID], erased: list[uuid.UUID]
) -> list[uuid.UUID]:
    """The memories that stay but were drawn from an erased session lose that link, each as a recorded
    change. Returns their ids."""
    mem = t.memory
    query = (
        select(*public_columns(mem))
        .where(mem.c.org_id == caller.org_id, among(mem.c.session_id, sessions), ~among(mem.c.id, erased))
        .order_by(mem.c.id)
        .with_for_update()
    )
    rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    for row in rows:
        await memories.apply_change(conn, caller, row, {"session_id": None}, "unlinked", reason="session erased")
    return [row["id"] for row in rows]


_UUIDS = ARRAY(UUID(as_uuid=True))
_CUT_FACTS = text(
    """UPDATE fact SET
         session_id = CASE WHEN session_id = ANY(:sessions) THEN NULL ELSE session_id END,
         replaces_id = CASE WHEN replaces_id = ANY(:facts) THEN NULL ELSE replaces_id END,
         invalidated_by = CASE WHEN invalidated_by = ANY(:facts) THEN NULL ELSE invalidated_by END,
         source_message_ids = ARRAY(SELECT v FROM unnest(source_message_ids) AS v WHERE NOT v = ANY(:messages))
       WHERE org_id = :org AND NOT id = ANY(:facts)
         AND (session_id = ANY(:sessions) OR replaces_id = ANY(:facts) OR invalidated_by = ANY(:facts)
              OR EXISTS (SELECT 1 FROM unnest(source_message_ids) AS v WHERE v = ANY(:messages)))"""
).bindparams(*(bindparam(name, type_=_UUIDS) for name in ("sessions", "facts", "messages")))


async def _cut_facts_loose(conn: AsyncConnection, org_id: uuid.UUID, ids: dict[str, list[uuid.UUID]]) -> None:
    """The facts that stay lose what names an erased row: their ``session_id``, their link to an erased
    version of themselves (``replaces_id``, ``invalidated_by``: the closing stands, not whom it came from)
    and the erased messages of their provenance. One pass over the organization's facts."""
    if ids["session"] or ids["fact"] or ids["message"]:
        params = {"org": org_id, "sessions": ids["session"], "facts": ids["fact"], "messages": ids["message"]}
        await conn.execute(_CUT_FACTS, params)


async def _strip(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    table: Table,
    column: str,
    erased: list[uuid.UUID],
    *,
    erasing: list[uuid.UUID],
) -> None:
    """Remove the erased ids from the uuid array ``column`` of the org's rows that name one, but for the
    rows about to be erased themselves (``erasing``). Each element is looked up once, in a hashed set: the
    rows are read once, however many ids went."""
    if not erased:
        return
    uuids = _UUIDS
    stmt = text(
        f"UPDATE {table.name} SET {column} = ARRAY(SELECT v FROM unnest({column}) AS v WHERE NOT v = ANY(:gone)) "
        f"WHERE org_id = :org AND EXISTS (SELECT 1 FROM unnest({column}) AS v WHERE v = ANY(:gone)) "
        "AND NOT id = ANY(:erasing)"
    ).bindparams(
        bindparam("gone", erased, type_=uuids), bindparam("erasing", erasing, type_=uuids), bindparam("org", org_id)
    )
    await conn.execute(stmt)


async def _forget_orphans(
    conn: AsyncConnection, gone: _Deleter, named: set[uuid.UUID], owned: list[uuid.UUID]
) -> list[uuid.UUID]:
    """Delete the entities the erased memories and facts named that nothing left mentions (and those
    merged into one of them or into an erased one, unmentioned too). Returns their ids."""
    e, me, f = t.entity, t.memory_entity, t.fact
    unmentioned = (
        ~exists().where(me.c.org_id == e.c.org_id, me.c.entity_id == e.c.id),
        ~exists().where(f.c.org_id == e.c.org_id, f.c.subject_id == e.c.id),
        ~exists().where(f.c.org_id == e.c.org_id, f.c.object_id == e.c.id),
    )
    query = select(e.c.id).where(e.c.org_id == gone.org_id, among(e.c.id, named), *unmentioned)
    orphans = list((await conn.execute(query)).scalars())
    merged = select(e.c.id).where(e.c.org_id == gone.org_id, among(e.c.merged_into, orphans + owned), *unmentioned)
    orphans += [i for i in (await conn.execute(merged)).scalars() if i not in orphans]
    await gone.rows(e, among(e.c.id, orphans))
    return orphans


async def _recount_repositories(conn: AsyncConnection, org_id: uuid.UUID, repository_ids: list[uuid.UUID]) -> None:
    """Repositories that stay but lost documents count them again."""
    if not repository_ids:
        return
    r, d = t.repository, t.document
    held = select(func.count()).where(d.c.org_id == r.c.org_id, d.c.repository_id == r.c.id).scalar_subquery()
    stmt = update(r).where(r.c.org_id == org_id, among(r.c.id, sorted(set(repository_ids))))
    await conn.execute(stmt.values(document_count=held, updated_at=func.now()))


async def recount_sessions(conn: AsyncConnection, org_id: uuid.UUID, session_ids: list[uuid.UUID]) -> None:
    """Other sessions erased messages were in: their counts are redone, and their summaries, which may
    quote what was erased, are cleared (the next extraction starts a new one)."""
    if not session_ids:
        return
    s, m = t.session, t.message
    counted = select(func.count()).where(m.c.org_id == s.c.org_id, m.c.session_id == s.c.id).scalar_subquery()
    await conn.execute(
        update(s)
        .where(s.c.org_id == org_id, among(s.c.id, session_ids))
        .values(message_count=counted, summary=None, summary_seq=0, summary_updated_at=None)
    )


async def _pseudonymize_actors(conn: AsyncConnection, org_id: uuid.UUID, pseudonym: Pseudonym, held: Holdings) -> None:
    """The rows that stay but name an erased key or agent as who acted (the access log, memory history,
    task events, mailbox messages) name the pseudonym instead; a mailbox thread started by an erased
    message is named by it too, and a reply to one loses ``reply_to``."""
    keys, agents, sent = held.ids["api_key"], held.ids["agent"], held.ids["agent_message"]
    for table, column, erased in (
        (t.memory_access_log, "key_id", keys),
        (t.memory_history, "actor_key_id", keys),
        (t.task_event, "key_id", keys),
        (t.task_event, "agent_id", agents),
        (t.agent_message, "key_id", keys),
        (t.agent_message, "thread_id", sent),
        (t.access_grant, "created_by", keys),
    ):
        if erased:
            stmt = update(table).where(table.c.org_id == org_id, among(table.c[column], erased))
            await conn.execute(stmt.values({column: pseudonym.value}))
    if sent:
        am = t.agent_message
        stmt = update(am).where(am.c.org_id == org_id, among(am.c.reply_to, sent))
        await conn.execute(stmt.values(reply_to=None))

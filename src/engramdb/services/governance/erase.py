"""Erasure: the deletes that cascade across areas, each one operation in one transaction.

* **A subject erased with a receipt** (:func:`subject`: ``POST /v1/<users|agents|sessions|documents|
  repositories>/{id}/erase``): everything the subject holds goes from every table, with what was derived
  from it alone, and its ids leave the logs that stay (``subjects.py`` says what a subject holds,
  ``erasure.py`` how it goes). The answer is a receipt (``schemas/erasure.py``): the erasure's pseudonym,
  its time, the rows removed per table and a hash over them; the audit row ``<kind>.erased`` names the
  pseudonym and holds the counts and the hash, and ``<kind>.erased`` is raised with the receipt.
* **Deleting a directory item** (:func:`directory_item`) clears the columns that point at it (a memory's
  links change with history). Deleting a user is the same erasure as ``POST /v1/users/{id}/erase``, but
  audited and raised as ``user.deleted`` (as before the receipt existed) and answered with nothing.
* **A memory purged** (:func:`memory`): its history, entity links and access log go; the audit rows about
  it keep only that they happened, the deliveries only its ids; its user's narrative versions, any of
  which may quote it, are deleted and a fresh one is queued.
* **A session deleted** (:func:`session`) keeps the memories drawn from it (their link is cleared, with
  history); erasing it (:func:`subject`) takes them too.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.errors import Conflict
from engramdb.schemas.erasure import ErasedSubject, ErasureReceipt, receipt_sha256
from engramdb.services.conversation import sessions
from engramdb.services.core import audit, events, idempotency
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.distill import narratives
from engramdb.services.governance import erasure, holds, subjects
from engramdb.services.memory import memories
from engramdb.services.tenancy import directory
from engramdb.services.tenancy.directory import Resource
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.repo import one_or_404


async def subject(rt: Runtime, caller: Caller, kind: str, subject_id: uuid.UUID) -> ErasureReceipt:
    """Erase a user, agent, session, document or repository (``kind``) for good, and say what went."""
    caller.require("admin")
    async with rt.db.tenant(caller.org_id) as conn:
        receipt = await _erase(conn, rt, caller, kind, subject_id, action=f"{kind}.erased")
        data = {"object": kind, "action": "erased", kind: {"id": subject_id}, "receipt": receipt}
        await events.emit(conn, org_id=caller.org_id, event_type=f"{kind}.erased", data=data)
    return receipt


async def _erase(
    conn: AsyncConnection, rt: Runtime, caller: Caller, kind: str, subject_id: uuid.UUID, *, action: str
) -> ErasureReceipt:
    """The erasure, audited as ``action`` under its pseudonym with the receipt's counts and hash."""
    await subjects.lock(conn, caller, kind, subject_id)
    held = await subjects.gather(conn, caller.org_id, kind, subject_id)
    await _refuse_if_held(conn, caller.org_id, kind, held.users)
    done = await erasure.run(conn, rt, caller, held)
    # The transaction's time, which is also the created_at of the audit row written below.
    erased_at = (await conn.execute(select(func.now()))).scalar_one()
    digest = receipt_sha256(caller.org_id, done.pseudonym.value, erased_at, done.counts)
    auditor = caller
    if caller.key_id in held.ids["api_key"]:  # a key erasing its own user or agent is erased with them
        auditor = dataclasses.replace(
            caller, key_id=done.pseudonym.value, actor=audit.ERASED_ACTOR, request_id=None, client_addr=None
        )
    details = {"counts": done.counts, "receipt_sha256": digest}
    await audit.record(conn, auditor, action, kind, done.pseudonym.value, details)
    return ErasureReceipt(
        subject=ErasedSubject.model_validate({"kind": kind, "pseudonym": done.pseudonym.value}),
        erased_at=erased_at,
        counts=done.counts,
        receipt_sha256=digest,
    )


async def _refuse_if_held(conn: AsyncConnection, org_id: uuid.UUID, kind: str, users: set[uuid.UUID]) -> None:
    """409 when an active legal hold, on the whole organization or on a user whose rows the erasure would
    remove, suspends deletion (``holds.py``)."""
    active = await holds.active(conn, org_id)
    held = sorted(users & active.users)
    if active.organization:
        raise Conflict(f"a legal hold on the whole organization suspends deletion: this {kind} cannot be erased")
    if held:
        whose = "the user is" if kind == "user" else f"user {held[0]}, whose data it holds, is"
        raise Conflict(f"{whose} under a legal hold, which suspends deletion: release the hold first")


async def directory_item(rt: Runtime, caller: Caller, res: Resource[Any], item_id: uuid.UUID) -> None:
    """Delete one item. Deleting a user erases them (as :func:`subject` does) and raises ``user.deleted``
    (their id and how many memories went)."""
    caller.require("admin")
    tbl = res.table
    async with rt.db.tenant(caller.org_id) as conn:
        if res is directory.USERS:
            receipt = await _erase(conn, rt, caller, "user", item_id, action="user.deleted")
            memories_erased = receipt.counts.get("memory", 0)
            data = {"object": "user", "action": "deleted", "user": {"id": item_id}, "memories": memories_erased}
            await events.emit(conn, org_id=caller.org_id, event_type=events.ERASURE_EVENT, data=data)
            return
        await one_or_404(
            conn,
            select(tbl.c.id).where(tbl.c.org_id == caller.org_id, tbl.c.id == item_id).with_for_update(),
            res.kind,
            item_id,
        )
        await erasure.clear_referrers(conn, caller, res, item_id)
        await conn.execute(sql_delete(tbl).where(tbl.c.org_id == caller.org_id, tbl.c.id == item_id))
        await audit.record(conn, caller, f"{res.kind}.deleted", res.kind, item_id)


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

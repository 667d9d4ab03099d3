"""The audit log: written in the same transaction as the change it records, read by admins.

**Erasure.** The log keeps that something happened, never what was erased. Erasing one object (a
memory purged, a document deleted) redacts the rows about it (:func:`redact`): their ``details`` (a
fact's statement, a reason, a path, a name) become ``{"redacted": true}``; the object's id stays, as the
subject of its own erasure. Deleting a user pseudonymizes (:func:`pseudonymize`): the rows about them and
their objects also lose their request id and client address, and every erased id in the log (as
``entity_id``, ``key_id`` or inside ``details``) becomes the erasure's one pseudonym
(``core/pseudonyms.py``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.schemas.audit import AuditEntry, AuditFilters
from engramdb.schemas.common import Page
from engramdb.services.core.caller import Caller
from engramdb.services.core.pseudonyms import Pseudonym, among
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching
from engramdb.storage.repo import page_by_id


async def record(
    conn: AsyncConnection,
    caller: Caller,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | None,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        insert(t.audit_log).values(
            org_id=caller.org_id,
            id=ids.uuid7(),
            key_id=caller.key_id,
            actor=caller.actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            request_id=caller.request_id,
            client_addr=caller.client_addr,
            details=details or {},
        )
    )


REDACTED = {"redacted": True}
ERASED_ACTOR = "erased"  # the actor of rows written with an erased user's own key


async def redact(conn: AsyncConnection, org_id: uuid.UUID, entity_type: str, entity_ids: list[uuid.UUID]) -> int:
    """In the erasing transaction: the rows about these objects keep action, ids, actor and time; their
    ``details`` become ``{"redacted": true}``. Returns the rows changed."""
    if not entity_ids:
        return 0
    a = t.audit_log
    stmt = (
        update(a)
        .where(a.c.org_id == org_id, a.c.entity_type == entity_type, among(a.c.entity_id, entity_ids))
        .values(details=REDACTED)
    )
    return (await conn.execute(stmt)).rowcount


async def pseudonymize(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    pseudonym: Pseudonym,
    subjects: dict[str, list[uuid.UUID]],
    *,
    keys: list[uuid.UUID],
    jobs: list[uuid.UUID],
) -> None:
    """In a user's erasure: rows about the erased ``subjects`` (entity type → ids) name the pseudonym and
    are redacted, without request id or client address; rows written with the user's own ``keys`` name
    the pseudonym as key and ``erased`` as actor; rows written by their ``jobs`` (request id
    ``job:<id>``) lose the request id; any other row whose details name an erased id names the pseudonym
    instead. Costs one pass over the org's audit log."""
    a = t.audit_log
    gone = {"request_id": None, "client_addr": None}
    about = [and_(a.c.entity_type == kind, among(a.c.entity_id, ids)) for kind, ids in subjects.items() if ids]
    if about:
        stmt = update(a).where(a.c.org_id == org_id, or_(*about))
        await conn.execute(stmt.values(entity_id=pseudonym.value, details=REDACTED, **gone))
    if keys:
        stmt = update(a).where(a.c.org_id == org_id, among(a.c.key_id, keys))
        await conn.execute(stmt.values(key_id=pseudonym.value, actor=ERASED_ACTOR, **gone))
    if jobs:
        stmt = update(a).where(a.c.org_id == org_id, a.c.request_id.in_([f"job:{j}" for j in jobs]))
        await conn.execute(stmt.values(request_id=None))
    await pseudonym.rewrite(conn, a, ("details",), a.c.org_id == org_id)


async def list_entries(db: Database, caller: Caller, filters: AuditFilters) -> Page[AuditEntry]:
    caller.require("admin")
    a = t.audit_log
    conds = [a.c.org_id == caller.org_id]
    conds += matching(a, filters, equal=("action", "entity_type", "entity_id", "key_id"))
    if filters.after is not None:
        conds.append(a.c.created_at >= filters.after)
    if filters.before is not None:
        conds.append(a.c.created_at < filters.before)
    async with db.tenant(caller.org_id) as conn:
        query = select(a).where(*conds)
        rows, next_cursor = await page_by_id(conn, query, a, cursor=filters.cursor, limit=filters.limit)
    return Page[AuditEntry](data=[AuditEntry.model_validate(r) for r in rows], next_cursor=next_cursor)

"""The audit log: written in the same transaction as the change it records, read by admins."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.schemas.audit import AuditEntry, AuditFilters
from engramdb.schemas.common import Page
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.database import Database
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


async def list_entries(
    db: Database, caller: Caller, filters: AuditFilters, *, cursor: str | None, limit: int
) -> Page[AuditEntry]:
    caller.require("admin")
    a = t.audit_log
    query = select(a).where(a.c.org_id == caller.org_id)
    if filters.action:
        query = query.where(a.c.action == filters.action)
    if filters.entity_type:
        query = query.where(a.c.entity_type == filters.entity_type)
    if filters.entity_id:
        query = query.where(a.c.entity_id == filters.entity_id)
    if filters.key_id:
        query = query.where(a.c.key_id == filters.key_id)
    if filters.after:
        query = query.where(a.c.created_at >= filters.after)
    if filters.before:
        query = query.where(a.c.created_at < filters.before)
    async with db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(conn, query, a, cursor=cursor, limit=limit)
    return Page[AuditEntry](data=[AuditEntry.model_validate(r) for r in rows], next_cursor=next_cursor)

"""The memory access log, read: each time a search (or a read, or a context assembly) returned a memory,
with the key, the request and the score. ``core/access.py`` writes it in batches off the request path,
so an access shows here a second or so after the request that made it.

A row is visible exactly when its memory is (``visibility.memory_accesses``): a caller who cannot see a
memory gets a 404 for its log, as for the memory itself.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.schemas.common import Page
from engramdb.schemas.memories import MemoryAccess, MemoryAccessFilters, MemoryAccessLogFilters
from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching
from engramdb.storage.repo import one_or_404, page_by_id

log = t.memory_access_log


async def list_for_memory(
    db: Database, caller: Caller, memory_id: uuid.UUID, filters: MemoryAccessFilters
) -> Page[MemoryAccess]:
    """One memory's accesses, newest first; 404 unless the caller sees the memory."""
    caller.require("read")
    mem = t.memory
    async with db.tenant(caller.org_id) as conn:
        visible = select(mem.c.id).where(*visibility.memories(caller), mem.c.id == memory_id)
        await one_or_404(conn, visible, "memory", memory_id)
        return await _page(conn, caller, filters, [log.c.memory_id == memory_id])


async def list_all(db: Database, caller: Caller, filters: MemoryAccessLogFilters) -> Page[MemoryAccess]:
    """The accesses of every memory the caller sees, newest first (what a key read, with ``key_id``)."""
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        return await _page(conn, caller, filters, matching(log, filters, equal=("memory_id",)))


async def _page(
    conn: AsyncConnection, caller: Caller, filters: MemoryAccessFilters, conds: list[ColumnElement[bool]]
) -> Page[MemoryAccess]:
    conds = [*visibility.memory_accesses(caller), *conds, *matching(log, filters, equal=("access_type", "key_id"))]
    if filters.accessed_after is not None:
        conds.append(log.c.accessed_at >= filters.accessed_after)
    if filters.accessed_before is not None:
        conds.append(log.c.accessed_at < filters.accessed_before)
    query = select(log).where(*conds)
    rows, next_cursor = await page_by_id(conn, query, log, cursor=filters.cursor, limit=filters.limit)
    return Page[MemoryAccess](data=[MemoryAccess.model_validate(r) for r in rows], next_cursor=next_cursor)

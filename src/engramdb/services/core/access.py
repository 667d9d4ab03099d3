"""Access tracking: search hits bump memories' ``access_count`` / ``last_accessed_at`` and feed the access
log, in batches off the request path (a flush every second or so, and at shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.services.core.caller import Caller
from engramdb.services.core.pseudonyms import among
from engramdb.storage import tables as t
from engramdb.storage.database import Database

_log = logging.getLogger(__name__)


async def forget(conn: AsyncConnection, org_id: uuid.UUID, memory_ids: list[uuid.UUID]) -> int:
    """In an erasure: delete the access-log rows of these memories (the log would name them after they
    are gone). Returns the rows deleted."""
    if not memory_ids:
        return 0
    log = t.memory_access_log
    stmt = delete(log).where(log.c.org_id == org_id, among(log.c.memory_id, memory_ids))
    return (await conn.execute(stmt)).rowcount


@dataclass(frozen=True)
class _Access:
    memory_id: uuid.UUID
    key_id: uuid.UUID | None
    request_id: str | None
    score: float
    access_type: str


class AccessTracker:
    def __init__(self, db: Database, *, max_pending: int = 100_000) -> None:
        self.db = db
        self.max_pending = max_pending
        self._pending: dict[uuid.UUID, list[_Access]] = defaultdict(list)
        self._count = 0

    def record(self, caller: Caller, hits: list[tuple[uuid.UUID, float]], access_type: str = "search") -> None:
        if self._count >= self.max_pending:  # a stalled database must not grow memory without bound
            return
        for memory_id, score in hits:
            self._pending[caller.org_id].append(
                _Access(memory_id, caller.key_id, caller.request_id, score, access_type)
            )
            self._count += 1

    async def flush(self) -> int:
        """Write what is pending, one transaction per org. An org whose write fails keeps its entries
        for the next flush (bounded by ``max_pending``); memories are updated in id order, so two
        processes flushing at once cannot deadlock on them."""
        pending, self._pending, self._count = self._pending, defaultdict(list), 0
        written = 0
        m = t.memory
        for org_id, accesses in pending.items():
            counts: dict[uuid.UUID, int] = defaultdict(int)
            for a in accesses:
                counts[a.memory_id] += 1
            try:
                async with self.db.tenant(org_id) as conn:
                    present: set[uuid.UUID] = set()
                    for memory_id in sorted(counts):
                        found = await conn.execute(
                            update(m)
                            .where(m.c.org_id == org_id, m.c.id == memory_id)
                            .values(access_count=m.c.access_count + counts[memory_id], last_accessed_at=func.now())
                            .returning(m.c.id)
                        )
                        present.update(found.scalars())
                    # A memory erased since it was found is not logged (the log would name it again).
                    logged = [
                        {
                            "org_id": org_id,
                            "id": ids.uuid7(),
                            "memory_id": a.memory_id,
                            "access_type": a.access_type,
                            "key_id": a.key_id,
                            "request_id": a.request_id,
                            "score": a.score,
                        }
                        for a in accesses
                        if a.memory_id in present
                    ]
                    if logged:
                        await conn.execute(insert(t.memory_access_log), logged)
            except Exception:
                if self._count + len(accesses) <= self.max_pending:
                    self._pending[org_id].extend(accesses)
                    self._count += len(accesses)
                _log.exception("access tracking for one org failed; kept for the next flush")
                continue
            written += len(logged)
        return written

    async def run(self, interval_s: float = 1.0) -> None:
        """Flush forever; on cancellation, flush what is left."""
        try:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    await self.flush()
                except Exception:  # access counts are best-effort; never take the server down
                    _log.exception("access tracking flush failed")
        finally:
            with contextlib.suppress(Exception):
                await self.flush()

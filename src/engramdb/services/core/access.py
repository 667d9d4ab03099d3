"""Access tracking: search hits bump memories' ``access_count`` / ``last_accessed_at`` and feed the access
log, in batches off the request path (a flush every second or so, and at shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, insert, update

from engramdb import ids
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.database import Database

_log = logging.getLogger(__name__)


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
                    for memory_id in sorted(counts):
                        await conn.execute(
                            update(m)
                            .where(m.c.org_id == org_id, m.c.id == memory_id)
                            .values(access_count=m.c.access_count + counts[memory_id], last_accessed_at=func.now())
                        )
                    await conn.execute(
                        insert(t.memory_access_log),
                        [
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
                        ],
                    )
            except Exception:
                if self._count + len(accesses) <= self.max_pending:
                    self._pending[org_id].extend(accesses)
                    self._count += len(accesses)
                _log.exception("access tracking for one org failed; kept for the next flush")
                continue
            written += len(accesses)
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

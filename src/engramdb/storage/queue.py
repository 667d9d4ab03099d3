"""Deferring background jobs inside the caller's transaction.

The queue is procrastinate's, in the ``procrastinate`` schema. A write and the job it needs commit
together (or neither does), so a 2xx is never followed by a lost job. This calls procrastinate's own
``procrastinate_defer_jobs_v1`` SQL function, the one its connectors use; the version suffix is part of
procrastinate's schema contract, pinned with the package (``procrastinate>=3.10,<3.11``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

SCHEMA = "procrastinate"

# Lanes: procrastinate queues, each worked with its own concurrency (``engramdb.jobs.worker``), so a backlog
# of webhook deliveries, or a 10 MB document, never holds up extraction. ``QUEUE`` also carries the periodic upkeep.
QUEUE = "engram"
WEBHOOKS = "engram.webhooks"
DOCUMENTS = "engram.documents"

# Task names: the job table's ``kind`` and procrastinate's ``task_name`` (registered in engramdb.jobs).
EXTRACT = "engram.extract"
NARRATE = "engram.narrate"
DELIVER_WEBHOOK = "engram.deliver_webhook"
INGEST_DOCUMENT = "engram.ingest_document"

LANES = {
    DELIVER_WEBHOOK: WEBHOOKS,
    INGEST_DOCUMENT: DOCUMENTS,
}  # the lane of each task; any other task goes to ``QUEUE``

_DEFER = text(
    "SELECT procrastinate.procrastinate_defer_jobs_v1(ARRAY[ROW("
    "CAST(:queue AS varchar), CAST(:task AS varchar), 0, CAST(:lock AS text), NULL::text, "
    "CAST(:args AS jsonb), CAST(:at AS timestamptz))::procrastinate.procrastinate_job_to_defer_v1])"
)


async def defer(
    conn: AsyncConnection,
    task: str,
    args: dict[str, Any],
    *,
    lock: str | None = None,
    scheduled_at: datetime | None = None,
) -> int:
    """Queue ``task`` with ``args`` in ``conn``'s transaction, in the task's lane; jobs sharing ``lock`` run one
    at a time, in the order they were deferred; a job ``scheduled_at`` a time runs no earlier. Returns the
    queue's job id."""
    # The defer function names its tables unqualified: they resolve through the search path.
    await conn.execute(text("SELECT set_config('search_path', 'public, procrastinate', true)"))
    lane = LANES.get(task, QUEUE)
    values = {"queue": lane, "task": task, "lock": lock, "args": json.dumps(args), "at": scheduled_at}
    ids = await conn.scalar(_DEFER, values)
    await conn.execute(text("SELECT set_config('search_path', 'public', true)"))
    assert ids, "procrastinate deferred no job"
    return int(ids[0])


_FORGET = text("SELECT engram_forget_queue_jobs(CAST(:ids AS uuid[]))")


async def forget(conn: AsyncConnection, job_ids: list[uuid.UUID]) -> int:
    """In ``conn``'s tenant transaction (an erasure's), remove the queue rows of these ``job`` rows: every
    attempt, finished or not, so no erased id stays in the queue and no pending job runs on erased data.
    A running row cannot be deleted under its worker: it loses its ids instead (see the migration
    ``0008_erasure``). Returns the rows changed."""
    if not job_ids:
        return 0
    return int(await conn.scalar(_FORGET, {"ids": [str(i) for i in job_ids]}) or 0)

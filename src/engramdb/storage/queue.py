"""Deferring background jobs inside the caller's transaction.

The queue is procrastinate's, in the ``procrastinate`` schema. A write and the job it needs commit
together (or neither does), so a 2xx is never followed by a lost job. This calls procrastinate's own
``procrastinate_defer_jobs_v1`` SQL function, the one its connectors use; the version suffix is part of
procrastinate's schema contract, pinned with the package (``procrastinate>=3.10,<3.11``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

QUEUE = "engram"
SCHEMA = "procrastinate"

# Task names: the job table's ``kind`` and procrastinate's ``task_name`` (registered in engramdb.jobs).
EXTRACT = "engram.extract"
NARRATE = "engram.narrate"
DELIVER_WEBHOOK = "engram.deliver_webhook"

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
    """Queue ``task`` with ``args`` in ``conn``'s transaction; jobs sharing ``lock`` run one at a time, in
    the order they were deferred; a job ``scheduled_at`` a time runs no earlier. Returns the queue's job id."""
    # The defer function names its tables unqualified: they resolve through the search path.
    await conn.execute(text("SELECT set_config('search_path', 'public, procrastinate', true)"))
    values = {"queue": QUEUE, "task": task, "lock": lock, "args": json.dumps(args), "at": scheduled_at}
    ids = await conn.scalar(_DEFER, values)
    await conn.execute(text("SELECT set_config('search_path', 'public', true)"))
    assert ids, "procrastinate deferred no job"
    return int(ids[0])

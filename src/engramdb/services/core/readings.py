"""What ``/metrics`` reads when a scrape comes in: the job queue's depth per lane, how long its oldest due
job has waited, and the live workers. Across every organization (the queue is not tenant data), counts
only, one statement that reads the queue's partial index of unfinished jobs (its cost follows the number
of unfinished jobs, not the queue's history)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from engramdb.storage.database import Database

_QUEUE = text(
    """
WITH lanes AS (
  SELECT queue_name,
         count(*) FILTER (WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())) AS due,
         count(*) FILTER (WHERE status = 'todo' AND scheduled_at > now()) AS scheduled,
         count(*) FILTER (WHERE status = 'doing') AS running,
         min(id) FILTER (WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())) AS oldest_id
    FROM procrastinate.procrastinate_jobs
   WHERE status IN ('todo', 'doing')
   GROUP BY queue_name
)
SELECT l.queue_name, l.due, l.scheduled, l.running,
       coalesce(extract(epoch FROM now() - greatest(j.scheduled_at, e.at)), 0) AS oldest_due_s,
       (SELECT count(*) FROM procrastinate.procrastinate_workers w
         WHERE w.last_heartbeat > now() - make_interval(secs => :stalled_s)) AS workers
  FROM lanes l
  LEFT JOIN procrastinate.procrastinate_jobs j ON j.id = l.oldest_id
  LEFT JOIN LATERAL (
    SELECT max(ev.at) AS at FROM procrastinate.procrastinate_events ev
     WHERE ev.job_id = j.id AND ev.type IN ('deferred', 'deferred_for_retry', 'retried')
  ) e ON true
"""
)
_WORKERS = text(
    "SELECT count(*) FROM procrastinate.procrastinate_workers "
    "WHERE last_heartbeat > now() - make_interval(secs => :stalled_s)"
)


@dataclass(frozen=True)
class Lane:
    name: str
    due: int  # waiting for a worker
    scheduled: int  # retries waiting for their time
    running: int
    oldest_due_s: float  # how long the oldest due job has waited (0: none waits)


@dataclass(frozen=True)
class Queue:
    lanes: list[Lane]
    workers: int  # live: a heartbeat within ENGRAM_WORKER_STALLED_S


async def queue(db: Database, *, stalled_s: float) -> Queue:
    async with db.autocommit() as conn:
        rows = (await conn.execute(_QUEUE, {"stalled_s": stalled_s})).mappings().all()
        workers = rows[0]["workers"] if rows else await conn.scalar(_WORKERS, {"stalled_s": stalled_s})
    lanes = [
        Lane(r["queue_name"], r["due"], r["scheduled"], r["running"], max(0.0, float(r["oldest_due_s"] or 0)))
        for r in rows
    ]
    return Queue(lanes=lanes, workers=int(workers or 0))

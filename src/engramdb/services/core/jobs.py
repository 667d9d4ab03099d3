"""Background work as tenant rows: queue a job with the write that needs it; record what became of it.

Each ``job`` row mirrors one procrastinate job (``queue_job_id``). The row is written in the same
transaction as the write that asked for it, and so is the queue entry (``storage.queue.defer``); the
handler records its outcome, with the effect of the work, in one transaction too, so a worker killed
mid-job leaves the row ``running`` until the retry finishes it, never half done.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids, metrics
from engramdb.errors import Conflict, InvalidRequest
from engramdb.providers.extraction import Usage as TokenUsage
from engramdb.schemas.common import Page
from engramdb.schemas.jobs import Job, JobFilters, JobQueue, JobWait
from engramdb.services.core import events, turns, visibility
from engramdb.services.core.caller import Caller
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching
from engramdb.storage.pagination import BAD_CURSOR, decode_cursor, encode_cursor
from engramdb.storage.repo import one_or_404, public_columns

j = t.job
FINISHED = ("succeeded", "failed")


async def enqueue(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    kind: str,
    *,
    max_attempts: int,
    session_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    lock: str | None = None,
) -> uuid.UUID:
    """A job row and its queue entry, in ``conn``'s transaction."""
    job_id = ids.uuid7()
    args = {"org_id": str(org_id), "job_id": str(job_id)}
    queue_job_id = await queue.defer(conn, kind, args, lock=lock)
    await conn.execute(
        insert(j).values(
            org_id=org_id,
            id=job_id,
            kind=kind,
            status="queued",
            session_id=session_id,
            user_id=user_id,
            max_attempts=max_attempts,
            queue_job_id=queue_job_id,
        )
    )
    return job_id


def session_lock(org_id: uuid.UUID, session_id: uuid.UUID) -> str:
    """Jobs of one session run one at a time, in order."""
    return f"session:{org_id}:{session_id}"


def user_lock(org_id: uuid.UUID, user_id: uuid.UUID) -> str:
    """Narratives of one user are rewritten one at a time."""
    return f"narrate:{org_id}:{user_id}"


def documents_lock(org_id: uuid.UUID) -> str:
    """An organization's background document ingests run one at a time, in order."""
    return f"documents:{org_id}"


async def retry(db: Database, caller: Caller, job_id: uuid.UUID, *, max_attempts: int) -> Job:
    """Queue a failed job again, as a new job (the failed one keeps its record). An extraction retried
    picks up every message its session has not had extracted, the failed job's included."""
    caller.require("write")
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(
            conn,
            select(j).where(*visibility.jobs(caller, write=True), j.c.id == job_id).with_for_update(),
            "job",
            job_id,
        )
        if row["status"] != "failed":
            raise Conflict(f"job {job_id} is {row['status']}; only a failed job can be retried")
        if row["kind"] == queue.INGEST_DOCUMENT:
            raise Conflict(f"job {job_id} ingested a document whose content is no longer kept: send the document again")
        lock = _lock_for(caller.org_id, row)
        new_id = await enqueue(
            conn,
            caller.org_id,
            row["kind"],
            max_attempts=max_attempts,
            session_id=row["session_id"],
            user_id=row["user_id"],
            lock=lock,
        )
    return await get(db, caller, new_id)


async def load(conn: AsyncConnection, org_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any] | None:
    row = (await conn.execute(select(j).where(j.c.org_id == org_id, j.c.id == job_id))).mappings().first()
    return dict(row) if row else None


async def start(db: Database, org_id: uuid.UUID, job_id: uuid.UUID, attempt: int) -> dict[str, Any] | None:
    """Mark the job running (``attempts`` counts every start, crashes included); None if it is gone or
    already finished. ``attempt`` is the queue's count, which decides when a failure is final."""
    del attempt
    async with db.tenant(org_id) as conn:
        row = (
            (
                await conn.execute(
                    update(j)
                    .where(j.c.org_id == org_id, j.c.id == job_id, j.c.status.notin_(FINISHED))
                    .values(status="running", attempts=j.c.attempts + 1, started_at=func.now(), updated_at=func.now())
                    .returning(j)
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def succeed(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    job_id: uuid.UUID,
    result: dict[str, Any],
    *,
    provider: str | None,
    usage: TokenUsage,
) -> None:
    """Record success in the transaction that holds the job's effect."""
    done = await conn.execute(
        update(j)
        .where(j.c.org_id == org_id, j.c.id == job_id)
        .values(
            status="succeeded",
            result=result,
            error=None,
            provider=provider,
            prompt_tokens=j.c.prompt_tokens + usage.prompt_tokens,
            completion_tokens=j.c.completion_tokens + usage.completion_tokens,
            llm_calls=j.c.llm_calls + usage.calls,
            finished_at=func.now(),
            updated_at=func.now(),
        )
        .returning(*public_columns(j))
    )
    await _emit(conn, org_id, "job.succeeded", done.mappings().first())


async def _emit(conn: AsyncConnection, org_id: uuid.UUID, event_type: str, row: Any) -> None:
    if row is not None:
        await events.emit(conn, org_id=org_id, event_type=event_type, data={"job": Job.model_validate(dict(row))})


async def progress(
    conn: AsyncConnection, org_id: uuid.UUID, job_id: uuid.UUID, result: dict[str, Any], *, usage: TokenUsage
) -> None:
    """Record a committed part of a job (its result so far and the tokens it spent), with that part."""
    await conn.execute(
        update(j)
        .where(j.c.org_id == org_id, j.c.id == job_id)
        .values(
            result=result,
            prompt_tokens=j.c.prompt_tokens + usage.prompt_tokens,
            completion_tokens=j.c.completion_tokens + usage.completion_tokens,
            llm_calls=j.c.llm_calls + usage.calls,
            updated_at=func.now(),
        )
    )


async def fail(
    db: Database,
    org_id: uuid.UUID,
    job_id: uuid.UUID,
    error: str,
    *,
    final: bool,
    provider: str | None = None,
    usage: TokenUsage | None = None,
) -> None:
    """Record a failed attempt: ``queued`` again while attempts remain, ``failed`` after the last. Tokens
    spent by the failed attempt still count."""
    usage = usage or TokenUsage()
    async with db.tenant(org_id) as conn:
        done = await conn.execute(
            update(j)
            .where(j.c.org_id == org_id, j.c.id == job_id, j.c.status != "succeeded")
            .values(
                status="failed" if final else "queued",
                error=error[:2000],
                provider=provider,
                prompt_tokens=j.c.prompt_tokens + usage.prompt_tokens,
                completion_tokens=j.c.completion_tokens + usage.completion_tokens,
                llm_calls=j.c.llm_calls + usage.calls,
                finished_at=func.now() if final else None,
                updated_at=func.now(),
            )
            .returning(*public_columns(j))
        )
        if final:
            await _emit(conn, org_id, "job.failed", done.mappings().first())


async def end_failed(conn: AsyncConnection, org_id: uuid.UUID, job_id: uuid.UUID, result: dict[str, Any]) -> None:
    """Record, in ``conn``'s transaction, that the job failed for good for a reason of the request's own
    (retrying cannot help): ``result`` says why."""
    error = result.get("error", {})
    done = await conn.execute(
        update(j)
        .where(j.c.org_id == org_id, j.c.id == job_id, j.c.status.notin_(FINISHED))
        .values(
            status="failed",
            error=str(error.get("detail") or error)[:2000],
            result=result,
            finished_at=func.now(),
            updated_at=func.now(),
        )
        .returning(*public_columns(j))
    )
    await _emit(conn, org_id, "job.failed", done.mappings().first())


async def execute(
    db: Database,
    org_id: uuid.UUID,
    job_id: uuid.UUID,
    *,
    attempt: int,
    final: bool,
    provider: str,
    work: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]],
) -> dict[str, Any] | None:
    """Run ``work`` on the job row as one attempt: mark it running, and record a failure (with the tokens
    the failed part spent) before letting the queue retry. ``work`` records success itself, in the
    transaction that holds its effect. An attempt cut short by a stopping worker is recorded as queued; the
    queue's upkeep (``requeue_orphans``) runs it again."""
    job = await start(db, org_id, job_id, attempt)
    if job is None:
        return None  # finished by an earlier attempt, or deleted with its organization
    try:
        done = await work(job)
    except asyncio.CancelledError:
        metrics.JOBS.labels(job["kind"], "interrupted").inc()
        note = "interrupted: the worker stopped; the job will run again"
        await asyncio.shield(fail(db, org_id, job_id, note, final=False, provider=provider))
        raise
    except Exception as exc:
        metrics.JOBS.labels(job["kind"], "failed" if final else "retried").inc()
        spent = getattr(exc, "usage", None)
        usage = spent if isinstance(spent, TokenUsage) else None
        await fail(db, org_id, job_id, f"{type(exc).__name__}: {exc}", final=final, provider=provider, usage=usage)
        raise
    metrics.JOBS.labels(job["kind"], "succeeded").inc()
    return done


def _lock_for(org_id: uuid.UUID, row: Any) -> str:
    if row["kind"] == queue.INGEST_DOCUMENT:
        return documents_lock(org_id)
    if row["kind"] == queue.EXTRACT and row["session_id"] is not None:
        return session_lock(org_id, row["session_id"])
    if row["kind"] == queue.NARRATE and row["user_id"] is not None:
        return user_lock(org_id, row["user_id"])
    raise Conflict(f"job {row['id']} no longer has what it worked on")


_ORPHANS = text(
    """SELECT j.org_id, j.id, j.kind, j.session_id, j.user_id FROM job j
       LEFT JOIN procrastinate.procrastinate_jobs q ON q.id = j.queue_job_id
       WHERE j.status IN ('queued', 'running') AND j.updated_at < now() - make_interval(secs => :quiet_s)
         AND (q.id IS NULL OR q.status NOT IN ('todo', 'doing'))
       LIMIT 1000"""
)


async def requeue_orphans(db: Database, *, quiet_s: float) -> int:
    """Queue again the unfinished jobs whose queue entry has ended without them (a worker stopped in the
    middle of a final attempt, or the entry was deleted): their work is still owed."""
    async with db.system() as conn:
        orphans = (await conn.execute(_ORPHANS, {"quiet_s": quiet_s})).mappings().all()
    for row in orphans:
        async with db.tenant(row["org_id"]) as conn:
            args = {"org_id": str(row["org_id"]), "job_id": str(row["id"])}
            queue_job_id = await queue.defer(conn, row["kind"], args, lock=_lock_for(row["org_id"], row))
            await conn.execute(
                update(j)
                .where(j.c.org_id == row["org_id"], j.c.id == row["id"], j.c.status.in_(("queued", "running")))
                .values(queue_job_id=queue_job_id, status="queued", updated_at=func.now())
            )
    return len(orphans)


async def get(db: Database, caller: Caller, job_id: uuid.UUID) -> Job:
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(
            conn, select(*public_columns(j)).where(*visibility.jobs(caller), j.c.id == job_id), "job", job_id
        )
    return Job.model_validate(row)


async def wait(db: Database, caller: Caller, job_id: uuid.UUID, *, timeout_s: float) -> Job:
    """The job once finished, or as it stands after ``timeout_s``; its ``wait`` says which, and for a job
    not finished, where it stands in its lane, so a caller can tell a busy queue from a stuck job."""
    turns.step_aside()  # the worker needs the CPU now, not this request (see services/core/turns.py)
    started = time.monotonic()
    deadline, delay = started + timeout_s, 0.02
    while True:
        job = await get(db, caller, job_id)
        if job.status in FINISHED or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)
    finished = job.status in FINISHED
    place = None if finished else await _queue_place(db, caller, job_id)
    waited = JobWait(finished=finished, waited_s=round(time.monotonic() - started, 3), queue=place)
    return job.model_copy(update={"wait": waited})


_PLACE = text(
    """SELECT q.queue_name AS lane, q.status::text AS status, q.scheduled_at, q.scheduled_at > now() AS later,
         (SELECT count(*) FROM procrastinate.procrastinate_jobs o
           WHERE o.queue_name = q.queue_name AND o.status = 'todo'
             AND (o.scheduled_at IS NULL OR o.scheduled_at <= now())
             AND (o.priority > q.priority OR (o.priority = q.priority AND o.id < q.id))) AS ahead,
         (SELECT count(*) FROM procrastinate.procrastinate_jobs o
           WHERE o.queue_name = q.queue_name AND o.status = 'doing') AS running,
         q.lock IS NOT NULL AND EXISTS (
           SELECT 1 FROM procrastinate.procrastinate_jobs o
            WHERE o.lock = q.lock AND o.id <> q.id AND (o.status = 'doing' OR (o.status = 'todo' AND o.id < q.id))
         ) AS behind
       FROM procrastinate.procrastinate_jobs q WHERE q.id = :queue_job_id"""
)


async def _queue_place(db: Database, caller: Caller, job_id: uuid.UUID) -> JobQueue | None:
    """Where a visible job stands in procrastinate's queue (read as the owner: the queue is not tenant data;
    only counts of other jobs are shown)."""
    async with db.tenant(caller.org_id) as conn:
        query = select(j.c.queue_job_id, func.extract("epoch", func.now() - j.c.created_at).label("age_s"))
        row = (await conn.execute(query.where(*visibility.jobs(caller), j.c.id == job_id))).mappings().first()
    if row is None or row["queue_job_id"] is None:
        return None
    async with db.system() as conn:
        q = (await conn.execute(_PLACE, {"queue_job_id": row["queue_job_id"]})).mappings().first()
    if q is None or q["status"] not in ("todo", "doing"):
        state, lane, ahead, running, behind, at = "gone", q["lane"] if q else queue.QUEUE, 0, 0, False, None
    else:
        state = "running" if q["status"] == "doing" else "scheduled" if q["later"] else "waiting"
        lane, ahead, running, behind, at = q["lane"], q["ahead"], q["running"], q["behind"], q["scheduled_at"]
    return JobQueue(
        lane=lane,
        state=state,
        ahead=0 if state != "waiting" else ahead,
        running=running,
        behind_earlier_job=bool(behind) and state == "waiting",
        scheduled_at=at if state == "scheduled" else None,
        age_s=round(float(row["age_s"]), 3),
    )


async def list_jobs(db: Database, caller: Caller, filters: JobFilters) -> Page[Job]:
    caller.require("read")
    conds = visibility.jobs(caller) + matching(j, filters, equal=("status", "kind", "session_id"))
    key = tuple_(j.c.created_at, j.c.id)
    cursor, limit = filters.cursor, filters.limit
    if cursor is not None:
        when, last_id = decode_cursor(cursor, size=2)
        try:
            conds.append(key < tuple_(datetime.fromisoformat(str(when)), uuid.UUID(str(last_id))))
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(BAD_CURSOR) from exc
    async with db.tenant(caller.org_id) as conn:
        rows = [
            dict(r)
            for r in (
                await conn.execute(select(*public_columns(j)).where(*conds).order_by(key.desc()).limit(limit + 1))
            ).mappings()
        ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last["created_at"].isoformat(), str(last["id"])])
    return Page[Job](data=[Job.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor)

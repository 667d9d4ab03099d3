"""Large documents are ingested by a background job, not inside the request.

A write of document content over ``ENGRAM_DOCUMENT_INLINE_BYTES`` (or any, with ``background=true``) is
first checked as far as it can be without parsing (size, type, the key's rights, the document or
repository it names: :func:`ingest.check`). Then the job row, its queue entry and the bytes with the
request (``document_upload``) are written in one transaction, and the caller gets ``202`` with the job:
an acknowledged ingest is never lost, and a restart finds it still queued.

The job runs in its own lane (``engram.documents``, ``ENGRAM_DOCUMENT_CONCURRENCY`` at once), one at a
time per organization (a procrastinate lock), and at most ``ENGRAM_DOCUMENT_QUEUE_PER_ORG`` of one
organization wait or run at once (429 beyond). It runs the same pipeline as an inline write, as the
caller who asked, and writes its progress into the job's ``result`` after each batch of vectors. A
stopping worker cancels it between two batches; the job is queued again and starts over from its bytes
(nothing of a document is written before its last step). A failure of the request's own (unsupported,
empty, a clash: a 4xx) is final at once, with the problem in ``result.error``; the bytes are deleted
when the job ends either way.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import delete, func, insert, select

from engramdb.errors import EngramError, QueueFull
from engramdb.providers.extraction import Usage
from engramdb.schemas.documents import DocumentFields, DocumentQueued
from engramdb.schemas.jobs import Job
from engramdb.services.core import jobs, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.document import ingest
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.repo import public_columns

up = t.document_upload
j = t.job
PROGRESS_EVERY_S = 1.0  # the job row is written at most this often while vectors are computed


def queued(rt: Runtime, data: bytes | None, background: bool) -> bool:
    """Whether a write with these bytes goes to the queue."""
    return data is not None and (background or len(data) > rt.settings.document_inline_bytes)


def _caller_record(caller: Caller) -> dict[str, Any]:
    return {
        "scopes": sorted(caller.scopes),
        **{
            k: str(v) if v is not None else None
            for k in ("key_id", "team_id", "user_id", "agent_id")
            for v in [getattr(caller, k)]
        },
        "actor": caller.actor,
        "request_id": caller.request_id,
        "client_addr": caller.client_addr,
    }


def _caller_from(org_id: uuid.UUID, record: dict[str, Any]) -> Caller:
    ids: dict[str, Any] = {
        k: uuid.UUID(record[k]) if record.get(k) else None for k in ("key_id", "team_id", "user_id", "agent_id")
    }
    return Caller(
        org_id=org_id,
        scopes=frozenset(record["scopes"]),
        actor=record["actor"],
        request_id=record.get("request_id"),
        client_addr=record.get("client_addr"),
        **ids,
    )


def _job_record(job: ingest.IngestJob) -> dict[str, Any]:
    uuids = ("document_id", "repository_id")
    return {
        "path": job.path,
        "declared_type": job.declared_type,
        **{k: str(getattr(job, k)) if getattr(job, k) is not None else None for k in uuids},
        "owner": job.owner.model_dump(mode="json", exclude_unset=True, exclude={"content"}) if job.owner else None,
        "title": job.title,
        "changes": job.changes,
        "text_only": job.text_only,
    }


def _job_from(record: dict[str, Any], data: bytes) -> ingest.IngestJob:
    owner = DocumentFields.model_validate(record["owner"]) if record["owner"] is not None else None
    return ingest.IngestJob(
        data=data,
        path=record["path"],
        declared_type=record["declared_type"],
        document_id=uuid.UUID(record["document_id"]) if record["document_id"] else None,
        repository_id=uuid.UUID(record["repository_id"]) if record["repository_id"] else None,
        owner=owner,
        title=record["title"],
        changes=record["changes"],
        text_only=record["text_only"],
    )


async def enqueue(rt: Runtime, caller: Caller, job: ingest.IngestJob) -> DocumentQueued:
    """Check ``job``, then queue it with its bytes (one transaction); the answer names the job."""
    assert job.data is not None
    user_id = await ingest.check(rt, caller, job)
    limit = rt.settings.document_queue_per_org
    async with rt.db.tenant(caller.org_id) as conn:
        # Taken in turn per organization, so two requests cannot both see room for one.
        await conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(jobs.documents_lock(caller.org_id)))))
        waiting = await conn.scalar(
            select(func.count())
            .select_from(up)
            .join(j, (j.c.org_id == up.c.org_id) & (j.c.id == up.c.job_id))
            .where(up.c.org_id == caller.org_id, j.c.status.in_(("queued", "running")))
        )
        if (waiting or 0) >= limit:
            raise QueueFull(
                f"this organization has {waiting} large documents waiting to be ingested (the limit is {limit}); "
                "send this one again when some are done (GET /v1/jobs?kind=engram.ingest_document)"
            )
        job_id = await jobs.enqueue(
            conn,
            caller.org_id,
            queue.INGEST_DOCUMENT,
            max_attempts=rt.settings.job_max_attempts,
            user_id=user_id,
            lock=jobs.documents_lock(caller.org_id),
        )
        await conn.execute(
            insert(up).values(
                org_id=caller.org_id,
                job_id=job_id,
                request={"caller": _caller_record(caller), "job": _job_record(job)},
                data=job.data,
                size_bytes=len(job.data),
            )
        )
        row = (
            (await conn.execute(select(*public_columns(j)).where(j.c.org_id == caller.org_id, j.c.id == job_id)))
            .mappings()
            .one()
        )
    return DocumentQueued(job=Job.model_validate(dict(row)))


async def run(rt: Runtime, org_id: uuid.UUID, job_id: uuid.UUID, *, attempt: int, final: bool) -> dict[str, Any] | None:
    """Run ingest job ``job_id`` (attempt ``attempt``)."""

    async def work(row: dict[str, Any]) -> dict[str, Any]:
        async with rt.db.tenant(org_id) as conn:
            upload = (
                (await conn.execute(select(up).where(up.c.org_id == org_id, up.c.job_id == job_id))).mappings().first()
            )
        if upload is None:  # erased with its user, or its organization is going
            result: dict[str, Any] = {
                "error": {"status": 410, "detail": "the document's content is gone (erased) before it was ingested"}
            }
            await _finish(rt, org_id, job_id, result, failed=True)
            return result
        async with rt.db.tenant(org_id) as conn:  # with the grants its key holds now, as a request would
            caller = await visibility.with_grants(conn, _caller_from(org_id, upload["request"]["caller"]))
        job = _job_from(upload["request"]["job"], bytes(upload["data"]))
        last = 0.0

        async def progress(done: int, total: int) -> None:
            nonlocal last
            if done < total and time.monotonic() - last < PROGRESS_EVERY_S:
                return
            last = time.monotonic()
            async with rt.db.tenant(org_id) as conn:
                await jobs.progress(
                    conn,
                    org_id,
                    job_id,
                    {"stage": "embedding", "chunks_embedded": done, "chunks_to_embed": total},
                    usage=Usage(),
                )

        try:
            done = await ingest.ingest(rt, caller, job, progress=progress)
        except EngramError as exc:
            if exc.status >= 500:
                raise  # ours, not the request's: retried
            result = {"error": {"status": exc.status, "type": exc.slug, "title": exc.title, "detail": exc.detail}}
            await _finish(rt, org_id, job_id, result, failed=True)
            return result
        result = {
            "stage": "done",
            "document_id": str(done.document.id),
            "action": done.action,
            "chunks": done.chunks.model_dump(),
        }
        await _finish(rt, org_id, job_id, result, failed=False)
        return result

    provider = f"embedder:{rt.embedder.model}"
    return await jobs.execute(rt.db, org_id, job_id, attempt=attempt, final=final, provider=provider, work=work)


async def _finish(rt: Runtime, org_id: uuid.UUID, job_id: uuid.UUID, result: dict[str, Any], *, failed: bool) -> None:
    """The job's end and the bytes' removal, together."""
    async with rt.db.tenant(org_id) as conn:
        await conn.execute(delete(up).where(up.c.org_id == org_id, up.c.job_id == job_id))
        if failed:
            await jobs.end_failed(conn, org_id, job_id, result)
        else:
            await jobs.succeed(conn, org_id, job_id, result, provider=f"embedder:{rt.embedder.model}", usage=Usage())

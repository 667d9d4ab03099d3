"""Background jobs, usage, and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter

from engramdb import limits
from engramdb.api.deps import CallerDep, CursorQ, DbDep, LimitQ, RuntimeDep
from engramdb.schemas.audit import AuditEntry, AuditFilters
from engramdb.schemas.common import Page
from engramdb.schemas.jobs import Job, JobStatus, Usage
from engramdb.services.core import audit, jobs

audit_router = APIRouter(tags=["audit"])


@audit_router.get(
    "/audit",
    response_model=Page[AuditEntry],
    operation_id="list_audit_entries",
    summary="The organization's audit log, newest first (admin)",
)
async def list_audit_entries(
    db: DbDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    key_id: uuid.UUID | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
) -> Page[AuditEntry]:
    filters = AuditFilters(
        action=action, entity_type=entity_type, entity_id=entity_id, key_id=key_id, after=after, before=before
    )
    return await audit.list_entries(db, caller, filters, cursor=cursor, limit=limit)


jobs_router = APIRouter(tags=["jobs"])


@jobs_router.get("/jobs/{job_id}", response_model=Job, operation_id="get_job", summary="A background job's state")
async def get_job(job_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Job:
    return await jobs.get(db, caller, job_id)


@jobs_router.get("/jobs", response_model=Page[Job], operation_id="list_jobs", summary="Background jobs, newest first")
async def list_jobs(
    db: DbDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    status: JobStatus | None = None,
    kind: Literal["engram.extract", "engram.narrate"] | None = None,
    session_id: uuid.UUID | None = None,
) -> Page[Job]:
    return await jobs.list_jobs(db, caller, status=status, kind=kind, session_id=session_id, cursor=cursor, limit=limit)


@jobs_router.post(
    "/jobs/{job_id}/retry",
    status_code=201,
    response_model=Job,
    operation_id="retry_job",
    summary="Queue a failed job again (as a new job)",
)
async def retry_job(job_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> Job:
    return await jobs.retry(rt.db, caller, job_id, max_attempts=rt.settings.job_max_attempts)


@jobs_router.get("/usage", response_model=Usage, operation_id="get_usage", summary="Jobs and LLM tokens (admin)")
async def get_usage(
    db: DbDep, caller: CallerDep, since: datetime | None = None, until: datetime | None = None
) -> Usage:
    return await jobs.usage(db, caller, since=since, until=until)

"""Background jobs, usage, and the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from engramdb.api.deps import CallerDep, DbDep, RuntimeDep
from engramdb.schemas.audit import AuditEntry, AuditFilters
from engramdb.schemas.common import Page, Timestamp
from engramdb.schemas.jobs import Job, JobFilters, Usage
from engramdb.services.core import audit, jobs, usage

audit_router = APIRouter(tags=["audit"])


@audit_router.get(
    "/audit",
    response_model=Page[AuditEntry],
    operation_id="list_audit_entries",
    summary="The organization's audit log, newest first (admin)",
)
async def list_audit_entries(
    filters: Annotated[AuditFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[AuditEntry]:
    return await audit.list_entries(db, caller, filters)


jobs_router = APIRouter(tags=["jobs"])


@jobs_router.get("/jobs/{job_id}", response_model=Job, operation_id="get_job", summary="A background job's state")
async def get_job(job_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Job:
    return await jobs.get(db, caller, job_id)


@jobs_router.get("/jobs", response_model=Page[Job], operation_id="list_jobs", summary="Background jobs, newest first")
async def list_jobs(filters: Annotated[JobFilters, Query()], db: DbDep, caller: CallerDep) -> Page[Job]:
    return await jobs.list_jobs(db, caller, filters)


@jobs_router.post(
    "/jobs/{job_id}/retry",
    status_code=201,
    response_model=Job,
    operation_id="retry_job",
    summary="Queue a failed job again (as a new job)",
)
async def retry_job(job_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> Job:
    return await jobs.retry(rt.db, caller, job_id, max_attempts=rt.settings.job_max_attempts)


@jobs_router.get(
    "/usage", response_model=Usage, operation_id="get_usage", summary="Jobs, LLM tokens, requests and storage (admin)"
)
async def get_usage(
    db: DbDep, caller: CallerDep, since: Timestamp | None = None, until: Timestamp | None = None
) -> Usage:
    return await usage.report(db, caller, since=since, until=until)

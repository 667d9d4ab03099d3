# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.
"""The job ledger and the audit log: ``client.jobs``, ``client.audit``."""

from __future__ import annotations

import time
from datetime import datetime
from time import monotonic

from engramdb.schemas.audit import AuditEntry, AuditFilters
from engramdb.schemas.jobs import Job, JobFilters, Usage
from engramdb.sdk import _common as c
from engramdb.sdk._common import Id
from engramdb.sdk._sync.pager import Pager
from engramdb.sdk._sync.resources.base import Fields, Resource


class Jobs(Resource):
    @c.operation("get_job")
    def get(self, job_id: Id) -> Job:
        return self._client.call(Job, "GET", f"/v1/jobs/{c.path_id(job_id)}")

    @c.operation("list_jobs")
    def list(self, filters: JobFilters | None = None, /, **fields: Fields) -> Pager[Job]:
        """Newest first. ``fields``: status, kind, session_id, cursor, limit."""
        return Pager(self._client, "/v1/jobs", Job, c.filters(JobFilters, filters, fields))

    def wait(self, job_id: Id, *, timeout: float = 60.0, interval: float = 0.5) -> Job:
        """Poll until the job has succeeded or failed (a failed attempt that will be retried is still
        running), or ``timeout`` seconds have passed; returns the job as it then stands."""
        deadline = monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job.status in ("succeeded", "failed") or monotonic() >= deadline:
                return job
            time.sleep(interval)

    @c.operation("retry_job")
    def retry(self, job_id: Id) -> Job:
        return self._client.call(Job, "POST", f"/v1/jobs/{c.path_id(job_id)}/retry")

    @c.operation("get_usage")
    def usage(self, *, since: datetime | None = None, until: datetime | None = None) -> Usage:
        """Jobs and LLM tokens per kind and provider."""
        return self._client.call(Usage, "GET", "/v1/usage", params={"since": since, "until": until})


class Audit(Resource):
    @c.operation("list_audit_entries")
    def list(self, filters: AuditFilters | None = None, /, **fields: Fields) -> Pager[AuditEntry]:
        """Newest first. ``fields``: action, entity_type, entity_id, key_id, after, before, cursor, limit."""
        return Pager(self._client, "/v1/audit", AuditEntry, c.filters(AuditFilters, filters, fields))

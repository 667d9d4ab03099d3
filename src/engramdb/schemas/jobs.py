"""Background jobs as callers see them, and LLM token usage per organization."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from engramdb.schemas.common import PageQuery, PublicModel

JobStatus = Literal["queued", "running", "succeeded", "failed"]
JobKind = Literal["engram.extract", "engram.narrate", "engram.ingest_document"]


class JobQueue(PublicModel):
    """Where an unfinished job stood in the queue when a wait for it ended."""

    lane: str = Field(description="The queue it waits in: `engram` (extraction and narratives) or `engram.documents`.")
    state: Literal["waiting", "scheduled", "running", "gone"] = Field(
        description="`waiting`: due, in line for a worker; `scheduled`: a retry waiting for `scheduled_at`; "
        "`running`: a worker has it; `gone`: its queue entry ended without it (the upkeep queues it again)."
    )
    ahead: int = Field(description="Jobs of the lane due before it and not started (every organization's).")
    running: int = Field(description="Jobs of the lane being run now (every organization's).")
    behind_earlier_job: bool = Field(
        description="It waits for an earlier job of the same session (or, for a narrative, user) to finish."
    )
    scheduled_at: datetime | None = Field(description="When a retry is due, if it waits for one.")
    age_s: float = Field(description="Seconds since the job was queued.")


class JobWait(PublicModel):
    """What ``wait=true`` saw."""

    finished: bool = Field(description="Whether the job finished within the wait (else it is shown as it stood).")
    waited_s: float
    queue: JobQueue | None = Field(default=None, description="Where the job stood, when it had not finished.")


class Job(PublicModel):
    id: uuid.UUID
    kind: str = Field(
        description="`engram.extract` (messages → memories, facts, entities, summary), `engram.narrate`, or "
        "`engram.ingest_document` (a large document: `result` shows its progress, then the document's id)."
    )
    status: JobStatus
    session_id: uuid.UUID | None
    user_id: uuid.UUID | None
    attempts: int
    max_attempts: int
    error: str | None = Field(description="The last attempt's error, when it failed (it is retried with backoff).")
    result: dict[str, Any] = Field(description="What the job did: counts of ADD / UPDATE / NOOP / INVALIDATE, …")
    provider: str | None = Field(description="`offline` or `llm:<model>`.")
    prompt_tokens: int
    completion_tokens: int
    llm_calls: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    wait: JobWait | None = Field(
        default=None, description="Only in the answer to `wait=true`: whether the job finished, else where it stands."
    )


class JobFilters(PageQuery):
    """``GET /jobs``, newest first."""

    status: JobStatus | None = None
    kind: JobKind | None = None
    session_id: uuid.UUID | None = None


class UsageRow(PublicModel):
    kind: str
    provider: str | None
    jobs: int
    prompt_tokens: int
    completion_tokens: int
    llm_calls: int


class RequestUsage(PublicModel):
    route_class: str = Field(description="`reads`, `writes`, `searches`, `extraction` or `exports` (see Rate limits).")
    requests: int = Field(description="Requests with a valid key, refused ones included.")
    refused: int = Field(description="Of those, answered 429 by a rate limit.")


class TableUsage(PublicModel):
    table: str = Field(description="`sessions`, `messages`, `memories`, `facts`, `entities`, `documents`, …")
    rows: int = Field(description="Rows the organization has stored there now.")
    bytes: int = Field(
        description="Estimated: the rows times the table's average row size on disk, indexes and TOAST included."
    )


class Usage(PublicModel):
    since: datetime | None
    until: datetime | None
    data: list[UsageRow] = Field(description="Jobs and LLM tokens per kind and provider, created in the period.")
    requests: list[RequestUsage] = Field(
        default_factory=list, description="API requests per route class, on the UTC days the period touches."
    )
    storage: list[TableUsage] = Field(default_factory=list, description="What the organization stores now.")
    storage_bytes: int = Field(default=0, description="The sum of `storage[].bytes` (an estimate).")

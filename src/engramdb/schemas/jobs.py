"""Background jobs as callers see them, and LLM token usage per organization."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from engramdb.schemas.common import PublicModel

JobStatus = Literal["queued", "running", "succeeded", "failed"]


class Job(PublicModel):
    id: uuid.UUID
    kind: str = Field(
        description="`engram.extract` (messages → memories, facts, entities, summary) or `engram.narrate`."
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


class UsageRow(PublicModel):
    kind: str
    provider: str | None
    jobs: int
    prompt_tokens: int
    completion_tokens: int
    llm_calls: int


class Usage(PublicModel):
    since: datetime | None
    until: datetime | None
    data: list[UsageRow]

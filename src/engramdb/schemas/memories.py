"""Memories: distilled items with importance, state, provenance and a full change history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from engramdb import limits
from engramdb.schemas.common import (
    Metadata,
    MetadataFilter,
    PageQuery,
    PublicModel,
    StrictModel,
    Tags,
    TagsFilter,
    Text,
    Timestamp,
)
from engramdb.schemas.conversations import UserRef

MemoryType = Literal["fact", "preference", "task", "procedural", "episodic"]
MemoryState = Literal["active", "paused", "archived", "deleted"]
MemoryContent = Annotated[Text, StringConstraints(min_length=1, max_length=limits.MAX_MEMORY_CHARS)]
Importance = Annotated[float, Field(ge=0.0, le=1.0)]


class MemoryCreate(UserRef):
    content: MemoryContent
    type: MemoryType = "fact"
    agent_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    importance: Importance = 0.5
    tags: Tags = Field(default_factory=list)
    categories: Tags = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    expires_at: Timestamp | None = None
    source_message_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=limits.MAX_SOURCE_MESSAGE_IDS,
        description="The messages this memory was drawn from (provenance).",
    )


class MemoryUpdate(StrictModel):
    content: MemoryContent | None = None
    type: MemoryType | None = None
    importance: Importance | None = None
    tags: Tags | None = None
    categories: Tags | None = None
    metadata: Metadata | None = None
    expires_at: Timestamp | None = None


class MemoryStateChange(StrictModel):
    state: MemoryState
    reason: Annotated[str, StringConstraints(max_length=limits.MAX_DESCRIPTION_CHARS)] | None = None


class Memory(PublicModel):
    id: uuid.UUID
    content: str
    type: str
    state: str
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    team_id: uuid.UUID | None
    app_id: uuid.UUID | None
    session_id: uuid.UUID | None
    importance: float
    access_count: int
    last_accessed_at: datetime | None
    tags: list[str]
    categories: list[str]
    metadata: dict[str, object]
    source: str = Field(description="`api` (written by a caller) or `extraction` (drawn from messages).")
    source_message_ids: list[uuid.UUID]
    speaker: str | None = Field(default=None, description="Who said what it was drawn from.")
    occurred_at: datetime | None = Field(default=None, description="When the event it records happened, if known.")
    extractor: str | None = Field(default=None, description="`offline` or `llm:<model>` for extracted memories.")
    version: int
    expires_at: datetime | None
    archived_at: datetime | None
    deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MemoryHistoryEntry(PublicModel):
    id: uuid.UUID
    memory_id: uuid.UUID
    version: int
    action: str
    old_values: dict[str, object] | None
    new_values: dict[str, object] | None
    actor: str
    actor_key_id: uuid.UUID | None
    request_id: str | None
    changed_at: datetime


class MemoryFilters(PageQuery):
    """``GET /memories``. Without ``state``, deleted memories are left out; expired ones unless asked."""

    user_id: uuid.UUID | None = None
    external_user_id: str | None = None
    agent_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    type: MemoryType | None = None
    state: MemoryState | None = None
    tags_any: TagsFilter = None
    tags_all: TagsFilter = None
    categories: TagsFilter = None
    metadata: MetadataFilter = None
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None
    include_expired: bool = False


class MemoryHistoryFilters(PageQuery):
    """A memory's history, oldest change first: paging only."""


AccessType = Literal["search", "read", "context"]


class MemoryAccess(PublicModel):
    """One time a memory was returned to a caller: by a search (``score`` is its fused score there), a
    read or a context assembly, with the key and request that asked."""

    id: uuid.UUID
    memory_id: uuid.UUID
    access_type: str
    key_id: uuid.UUID | None
    request_id: str | None
    score: float | None
    accessed_at: datetime


class MemoryAccessFilters(PageQuery):
    """A memory's access log (``GET /memories/{memory_id}/accesses``), newest first; ``accessed_after`` is
    inclusive, ``accessed_before`` exclusive."""

    access_type: AccessType | None = None
    key_id: uuid.UUID | None = None
    accessed_after: Timestamp | None = None
    accessed_before: Timestamp | None = None


class MemoryAccessLogFilters(MemoryAccessFilters):
    """``GET /memory-accesses``: the access log of every memory the caller sees, newest first."""

    memory_id: uuid.UUID | None = None

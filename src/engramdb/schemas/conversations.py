"""Sessions (conversations) and their messages (episodes)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from engramdb import limits
from engramdb.schemas.common import (
    ExternalId,
    Metadata,
    MetadataFilter,
    Name,
    PageQuery,
    PublicModel,
    StrictModel,
    Tags,
    TagsFilter,
    Text,
    Timestamp,
)
from engramdb.schemas.jobs import Job

Role = Literal["user", "assistant", "system", "tool"]
MessageContent = Annotated[Text, StringConstraints(min_length=1, max_length=limits.MAX_MESSAGE_CHARS)]


class UserRef(StrictModel):
    """Names a user by Engram id or by your app's ``external_id`` (created on first use)."""

    user_id: uuid.UUID | None = None
    external_user_id: ExternalId | None = Field(
        default=None, description="Your app's id for the user; the user is created if it does not exist yet."
    )

    @model_validator(mode="after")
    def _one_user_ref(self) -> UserRef:
        if self.user_id is not None and self.external_user_id is not None:
            raise ValueError("give user_id or external_user_id, not both")
        return self


class SessionCreate(UserRef):
    agent_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    title: Name | None = None
    tags: Tags = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    expires_at: Timestamp | None = Field(
        default=None, description="After this the session is hidden like an expired memory, then deleted."
    )


class SessionUpdate(StrictModel):
    title: Name | None = None
    tags: Tags | None = None
    metadata: Metadata | None = Field(default=None, description="Replaces the whole metadata object.")
    expires_at: Timestamp | None = Field(default=None, description="null: never expires.")


class Session(PublicModel):
    id: uuid.UUID
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    team_id: uuid.UUID | None
    app_id: uuid.UUID | None
    title: str | None
    status: Literal["active", "closed"]
    tags: list[str]
    metadata: dict[str, object]
    message_count: int
    last_message_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    summary: str | None = Field(default=None, description="Rolling summary, updated by the extraction job.")
    extracted_seq: int = Field(default=0, description="Messages up to this seq have been extracted.")
    summary_updated_at: datetime | None = None
    expires_at: datetime | None = None


class MessageCreate(UserRef):
    role: Role
    content: MessageContent
    name: Name | None = Field(default=None, description="The speaker's name, as chat formats carry it.")
    occurred_at: Timestamp | None = Field(
        default=None, description="When it was said (defaults to now; may be in the past on import)."
    )
    tags: Tags = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    parent_id: uuid.UUID | None = Field(default=None, description="The message this one replies to.")
    channel: Name | None = Field(default=None, description="Where it was said: chat, email, sms, voice, …")


class MessageBatch(StrictModel):
    messages: list[MessageCreate] = Field(min_length=1, max_length=limits.MAX_MESSAGES_PER_BATCH)
    defer_embedding: bool = Field(
        default=False,
        description="Store now, embed in the background (bulk imports); such messages are keyword-searchable "
        "at once and vector-searchable once embedded.",
    )
    extract: bool = Field(
        default=True,
        description="Queue a background job that turns these messages into memories, facts and entities and "
        "updates the session summary. False: no job now (a bulk import); the session's next extraction job "
        "still reads them. To keep a message out of extraction for good, set its metadata engram_extract: false.",
    )


class Message(PublicModel):
    id: uuid.UUID
    session_id: uuid.UUID
    seq: int
    parent_id: uuid.UUID | None
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    role: str
    name: str | None
    content: str
    channel: str | None
    tags: list[str]
    metadata: dict[str, object]
    occurred_at: datetime
    created_at: datetime


class MessageFilters(PageQuery):
    """``GET /sessions/{id}/messages``, in ``occurred_at`` order (``order=desc`` reverses it)."""

    role: Role | None = None
    tags_any: TagsFilter = None
    tags_all: TagsFilter = None
    occurred_after: Timestamp | None = None
    occurred_before: Timestamp | None = None
    metadata: MetadataFilter = None
    order: Literal["asc", "desc"] = "asc"


class SessionFilters(PageQuery):
    """``GET /sessions``, newest first; expired sessions only with ``include_expired=true``."""

    user_id: uuid.UUID | None = None
    external_user_id: ExternalId | None = None
    agent_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    status: Literal["active", "closed"] | None = None
    tags_any: TagsFilter = None
    metadata: MetadataFilter = None
    include_expired: bool = False


class MessagesAdded(PublicModel):
    """The stored messages, in order, and the extraction job queued for them (null with ``extract: false``)."""

    data: list[Message]
    next_cursor: None = None
    job: Job | None = None

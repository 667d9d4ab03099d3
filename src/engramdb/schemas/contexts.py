"""Offloaded contexts: what an agent moves out of its window (a transcript, a scratchpad, tool output, a file),
kept compressed and restored byte-exact."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, model_validator

from engramdb import limits
from engramdb.schemas.common import (
    JsonObjectQuery,
    Metadata,
    MetadataFilter,
    Name,
    NoNul,
    PageQuery,
    PublicModel,
    Tags,
    TagsFilter,
    Timestamp,
)
from engramdb.schemas.conversations import UserRef

_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;.*)?$")


def _media_type(value: str) -> str:
    if not _MEDIA_TYPE.match(value):
        raise ValueError("a media type such as text/plain or application/json (type/subtype, then parameters)")
    return value


MediaType = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_NAME_CHARS),
    NoNul,
    AfterValidator(_media_type),
    Field(description="A media type; by default the upload's, else from the file name, else guessed from the bytes."),
]
FileName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_PATH_CHARS),
    NoNul,
    Field(description="The name a restore suggests (`Content-Disposition`); it also gives the type."),
]


def _utf8(value: str) -> str:
    """Content may hold any character (NUL too: it is stored as bytes), but must encode as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text is not valid Unicode (it holds a lone surrogate)") from exc
    return value


class ContextFields(UserRef):
    """What a new context may say besides its content (the JSON body, the upload's query or form fields)."""

    title: Name | None = None
    filename: FileName | None = None
    content_type: MediaType | None = None
    tags: Tags = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    team_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = Field(
        default=None, description="The session it belongs to: its user, agent, team and app unless named."
    )
    task_id: uuid.UUID | None = Field(default=None, description="The task it belongs to: its user unless named.")
    expires_at: Timestamp | None = Field(default=None, description="After this it is hidden, then deleted.")
    ttl_s: int | None = Field(
        default=None, ge=1, le=limits.MAX_CONTEXT_TTL_S, description="Expires this many seconds from now."
    )

    @model_validator(mode="after")
    def _one_expiry(self) -> ContextFields:
        if self.expires_at is not None and self.ttl_s is not None:
            raise ValueError("give expires_at or ttl_s, not both")
        return self


class ContextCreate(ContextFields):
    """``POST /contexts`` with a JSON body: the content is text (stored as its UTF-8 bytes)."""

    content: Annotated[
        str, StringConstraints(min_length=1, max_length=limits.MAX_CONTEXT_BYTES), AfterValidator(_utf8)
    ] = Field(description="The text itself. Binary content goes as the raw body or a multipart upload.")


class ContextUploadParams(ContextFields):
    """The query parameters of a raw upload (any other media type than JSON or multipart): the body is the
    content, byte for byte. ``metadata`` is a JSON object as text; ``tags`` is repeated."""

    metadata: JsonObjectQuery = Field(default_factory=dict, description="A JSON object, as text.")


def _split_tags(value: Any) -> Any:
    """Form fields: ``tags`` may be repeated, comma-separated, or both."""
    if value is None:
        return value
    items = value if isinstance(value, list) else [value]
    return [part for item in items for part in str(item).split(",") if part.strip()]


def _json_object(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError("metadata must be a JSON object") from exc
    return value


class ContextUploadForm(ContextFields):
    """The form fields of a multipart upload; the content is the ``file`` part (its name is the default
    ``filename``, its type the default ``content_type``)."""

    tags: Annotated[Tags, BeforeValidator(_split_tags)] = Field(default_factory=list)
    metadata: Annotated[Metadata, BeforeValidator(_json_object)] = Field(default_factory=dict)


SummarySource = Literal["extractive", "llm", "described"]


class Context(PublicModel):
    id: uuid.UUID
    team_id: uuid.UUID | None
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    app_id: uuid.UUID | None
    session_id: uuid.UUID | None
    task_id: uuid.UUID | None
    title: str | None
    filename: str | None
    content_type: str
    tags: list[str]
    metadata: dict[str, object]
    original_bytes: int = Field(description="Size of the content as received.")
    stored_bytes: int = Field(description="Size of the compressed frame stored.")
    compression_ratio: float = Field(description="original_bytes / stored_bytes.")
    compression: Literal["zstd"]
    compression_level: int
    content_sha256: str = Field(description="SHA-256 of the content (hex): a restore gives exactly these bytes.")
    is_text: bool = Field(description="Whether the content is UTF-8 text (then its start is keyword-indexed).")
    summary: str = Field(description="The representative text: what is embedded and what search shows.")
    summary_source: SummarySource = Field(
        description="`llm`: written by the configured LLM; `extractive`: sentences picked from the text; "
        "`described`: binary content, described by its title, name and type."
    )
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ContextResult(PublicModel):
    context: Context
    action: Literal["created", "unchanged"] = Field(
        description="`unchanged`: the same content was already stored in this scope; that one is returned as "
        "it was (its title, tags, metadata and expiry unchanged)."
    )


class ContextFilters(PageQuery):
    """``GET /contexts``, newest first; expired ones only with ``include_expired=true``."""

    user_id: uuid.UUID | None = None
    external_user_id: str | None = None
    team_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    task_id: uuid.UUID | None = None
    content_type: str | None = Field(default=None, max_length=limits.MAX_NAME_CHARS, description="Exactly this type.")
    tags_any: TagsFilter = None
    tags_all: TagsFilter = None
    metadata: MetadataFilter = None
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None
    include_expired: bool = False

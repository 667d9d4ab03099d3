"""Documents (whole texts cut into searchable chunks) and repositories (named collections of them)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Base64Bytes, BeforeValidator, Field, StringConstraints, WithJsonSchema, model_validator

from engramdb import limits
from engramdb.schemas.common import (
    Description,
    Metadata,
    MetadataFilter,
    Name,
    NoNul,
    PageQuery,
    PublicModel,
    StrictModel,
    Tags,
    TagsFilter,
    Text,
)
from engramdb.schemas.conversations import UserRef
from engramdb.schemas.jobs import Job

DocPath = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_PATH_CHARS),
    NoNul,
    Field(description="A file name or a path inside a repository: it gives the extension and the citation."),
]
SourceUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_URL_CHARS), NoNul
]
DeclaredType = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_NAME_CHARS),
    Field(description="A media type (`text/markdown`, `application/pdf`, …); by default from the path's extension."),
]
Action = Literal["created", "updated", "unchanged"]
FileAction = Literal["added", "changed", "unchanged", "skipped"]


class DocumentFields(UserRef):
    """What a new document may say besides its content (shared by the JSON and the upload forms)."""

    title: Name | None = Field(default=None, description="By default the document's first heading, if it has one.")
    path: DocPath | None = None
    content_type: DeclaredType | None = None
    source_url: SourceUrl | None = None
    tags: Tags = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)
    agent_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    repository_id: uuid.UUID | None = Field(
        default=None, description="Put the document in this repository at `path` (replacing what is there)."
    )

    @model_validator(mode="after")
    def _repository_owns(self) -> DocumentFields:
        owners = (self.user_id, self.external_user_id, self.agent_id, self.app_id)
        if self.repository_id is not None and any(v is not None for v in owners):
            raise ValueError("a document in a repository belongs to the repository's owner: name no user, agent or app")
        return self


class DocumentCreate(DocumentFields):
    content: Text = Field(description="The text itself. PDF and other binary formats go through the upload.")

    @model_validator(mode="after")
    def _repository_needs_path(self) -> DocumentCreate:
        if self.repository_id is not None and self.path is None:
            raise ValueError("a document in a repository needs a path")
        return self


def _split_tags(value: Any) -> Any:
    """Form fields: ``tags`` may be repeated, comma-separated, or both."""
    if value is None:
        return value
    items = value if isinstance(value, list) else [value]
    return [part for item in items for part in (str(item).split(",")) if part.strip()]


def _json_object(value: Any) -> Any:
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError("metadata must be a JSON object") from exc
    return value


class DocumentUploadForm(DocumentFields):
    """The form fields of a multipart upload; the file itself is the ``file`` part, whose name is the
    document's path unless ``path`` is given."""

    tags: Annotated[Tags, BeforeValidator(_split_tags)] = Field(
        default_factory=list, description="Repeat the field, or separate tags with commas."
    )
    metadata: Annotated[Metadata, BeforeValidator(_json_object)] = Field(
        default_factory=dict, description="A JSON object, as a string."
    )

    @model_validator(mode="before")
    @classmethod
    def _without_the_file(cls, data: Any) -> Any:
        """The form arrives whole, with the ``file`` part: that one is the route's, not a field."""
        return {k: v for k, v in data.items() if k != "file"} if isinstance(data, dict) else data


class DocumentUpdate(StrictModel):
    title: Name | None = None
    content: Text | None = Field(default=None, description="New text: only the chunks that changed are re-embedded.")
    content_type: DeclaredType | None = Field(default=None, description="With `content` only.")
    source_url: SourceUrl | None = None
    tags: Tags | None = None
    metadata: Metadata | None = Field(default=None, description="Replaces the whole metadata object.")

    @model_validator(mode="after")
    def _type_with_content(self) -> DocumentUpdate:
        if self.content_type is not None and self.content is None:
            raise ValueError("content_type goes with content")
        return self


class Document(PublicModel):
    id: uuid.UUID
    repository_id: uuid.UUID | None
    path: str | None
    title: str | None
    content_type: str
    code_language: str | None
    source_url: str | None
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    app_id: uuid.UUID | None
    tags: list[str]
    metadata: dict[str, object]
    content_sha256: str = Field(description="SHA-256 of the bytes as received (hex): compare before re-sending.")
    size_bytes: int
    chunk_count: int
    page_count: int | None
    created_at: datetime
    updated_at: datetime
    content: str | None = Field(default=None, description="The text (extracted, for PDF and HTML); not in lists.")


class ChunkCounts(PublicModel):
    """What a write did to a document's chunks: ``kept`` chunks keep their ids (and, unless their text
    or headings changed, their vectors); ``embedded`` counts the chunks whose vector was computed."""

    added: int = 0
    kept: int = 0
    removed: int = 0
    embedded: int = 0


class DocumentResult(PublicModel):
    document: Document
    action: Action = Field(description="`unchanged`: identical content was already stored; nothing was embedded.")
    chunks: ChunkCounts


class DocumentQueued(PublicModel):
    """A document too large to ingest inside the request (or sent with ``background=true``): its job."""

    status: Literal["queued"] = "queued"
    job: Job = Field(
        description="Follow it at `GET /v1/jobs/{id}`: `result` shows the chunks embedded so far, then the "
        "document's `document_id`, `action` and `chunks`; a refusal (unsupported, empty) fails it with "
        "`result.error` as the problem the request would have got."
    )


class DocumentChunk(PublicModel):
    id: uuid.UUID
    document_id: uuid.UUID
    ordinal: int
    content: str
    heading_path: list[str]
    start_line: int | None
    end_line: int | None
    page: int | None
    char_start: int
    char_end: int
    token_count: int | None
    citation: str = Field(description='Where the chunk sits, for a reader: "README.md, section Install, lines 12–30".')
    created_at: datetime


class DocumentFilters(PageQuery):
    """``GET /documents``, newest first, without their content."""

    user_id: uuid.UUID | None = None
    external_user_id: str | None = None
    agent_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    repository_id: uuid.UUID | None = None
    path_prefix: Annotated[
        str | None,
        StringConstraints(max_length=limits.MAX_PATH_CHARS),
        Field(description="Documents whose path starts with these characters."),
    ] = None
    content_type: str | None = None
    tags_any: TagsFilter = None
    tags_all: TagsFilter = None
    metadata: MetadataFilter = None


class DocumentChunkFilters(PageQuery):
    """A document's chunks in order: paging only."""


# --- repositories --------------------------------------------------------------------------------------


class RepositoryCreate(UserRef):
    name: Name
    description: Description | None = None
    source: SourceUrl | None = Field(default=None, description="Where the files come from: a folder, a git URL.")
    agent_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    tags: Tags = Field(default_factory=list)
    metadata: Metadata = Field(default_factory=dict)


class RepositoryUpdate(StrictModel):
    name: Name | None = None
    description: Description | None = None
    source: SourceUrl | None = None
    tags: Tags | None = None
    metadata: Metadata | None = Field(default=None, description="Replaces the whole metadata object.")


class Repository(PublicModel):
    id: uuid.UUID
    name: str
    description: str | None
    source: str | None
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    app_id: uuid.UUID | None
    tags: list[str]
    metadata: dict[str, object]
    document_count: int
    last_synced_at: datetime | None
    created_at: datetime
    updated_at: datetime


class RepositoryFilters(PageQuery):
    """``GET /repositories``, newest first."""

    user_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    tags_any: TagsFilter = None
    tags_all: TagsFilter = None


class RepositoryFile(StrictModel):
    """One file of a sync call: its text, or its bytes in base64 (PDF, or text in another encoding)."""

    path: DocPath
    content: Text | None = None
    content_base64: Annotated[Base64Bytes, WithJsonSchema({"type": "string", "format": "byte"})] | None = Field(
        default=None, description="The bytes, base64-encoded (RFC 4648)."
    )
    content_type: DeclaredType | None = None

    @model_validator(mode="after")
    def _one_content(self) -> RepositoryFile:
        if (self.content is None) == (self.content_base64 is None):
            raise ValueError("give content or content_base64, exactly one")
        return self


class RepositorySync(StrictModel):
    files: list[RepositoryFile] = Field(min_length=1, max_length=limits.MAX_SYNC_FILES)

    @model_validator(mode="after")
    def _distinct_paths(self) -> RepositorySync:
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("each path may appear once per call")
        return self


class FileResult(PublicModel):
    path: str
    action: FileAction
    reason: str | None = Field(default=None, description="Why a file was skipped (binary, empty, too large…).")
    document_id: uuid.UUID | None = None
    chunks: ChunkCounts = Field(default_factory=ChunkCounts)


class SyncResult(PublicModel):
    results: list[FileResult]


class RepositoryPrune(StrictModel):
    keep_paths: list[Annotated[str, StringConstraints(max_length=limits.MAX_PATH_CHARS)]] = Field(
        max_length=limits.MAX_KEEP_PATHS,
        description="Every path the source still has; the repository's other documents are deleted.",
    )


class PruneResult(PublicModel):
    deleted_paths: list[str]

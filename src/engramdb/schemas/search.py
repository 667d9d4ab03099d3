"""Search requests and results: one declarative request, explainable scores."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from engramdb import limits
from engramdb.schemas.common import Metadata, NoNul, PublicModel, StrictModel, Tag, Text, Timestamp
from engramdb.schemas.conversations import Role, UserRef
from engramdb.schemas.memories import MemoryState, MemoryType

SearchType = Literal["messages", "memories", "facts", "entities", "chunks", "documents", "contexts"]
SearchMode = Literal["hybrid", "vector", "keyword"]
Query = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_QUERY_CHARS), NoNul]
PathPrefix = Annotated[Text, StringConstraints(min_length=1, max_length=limits.MAX_QUERY_CHARS)]
ContentType = Annotated[Text, StringConstraints(min_length=1, max_length=limits.MAX_NAME_CHARS)]
RepositoryIds = Annotated[list[uuid.UUID], Field(min_length=1, max_length=limits.MAX_TAGS)]


def _active() -> list[MemoryState]:
    return ["active"]


def _default_types() -> list[SearchType]:
    # Facts, entities, chunks and documents are asked for by name: the default is what the benchmarks
    # were tuned on.
    return ["messages", "memories"]


class SearchFilters(StrictModel):
    tags_any: list[Tag] | None = Field(default=None, max_length=limits.MAX_TAGS)
    tags_all: list[Tag] | None = Field(default=None, max_length=limits.MAX_TAGS)
    categories: list[Tag] | None = Field(default=None, max_length=limits.MAX_TAGS, description="Memories only.")
    metadata: Metadata | None = Field(default=None, description="JSON object the metadata must contain.")
    occurred_after: Timestamp | None = Field(default=None, description="Messages only: said at or after.")
    occurred_before: Timestamp | None = Field(default=None, description="Messages only: said before.")
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None
    role: list[Role] | None = Field(default=None, description="Messages only.")
    memory_types: list[MemoryType] | None = Field(default=None, description="Memories only.")
    state: list[MemoryState] = Field(default_factory=_active, min_length=1, description="Memories only.")
    repository_id: uuid.UUID | RepositoryIds | None = Field(
        default=None, description="Chunks and documents only: in this repository (or any of these)."
    )
    path_prefix: PathPrefix | None = Field(default=None, description="Chunks and documents only: path starts with.")
    content_types: list[ContentType] | None = Field(
        default=None, max_length=limits.MAX_TAGS, description="Chunks, documents and contexts only."
    )


class SearchWeights(StrictModel):
    """How much each retriever and each factor counts (0 = not at all)."""

    vector: float = Field(default=1.0, ge=0.0, le=4.0, description="Weight of the vector ranking in the fusion.")
    keyword: float = Field(default=1.0, ge=0.0, le=4.0, description="Weight of the keyword ranking in the fusion.")
    recency: float = Field(default=0.0, ge=0.0, le=1.0)
    recency_half_life_days: float = Field(default=30.0, gt=0.0, le=36_500.0)
    importance: float = Field(default=0.0, ge=0.0, le=1.0, description="Memories only.")
    neighbor: float = Field(
        default=0.4,
        ge=0.0,
        le=1.0,
        description="Messages only: a turn's vector score borrows this share of its most similar adjacent turn's.",
    )
    context: float = Field(
        default=0.9,
        ge=0.0,
        le=1.0,
        description="Messages only: a turn may score as its vector after the previous turn, scaled by this.",
    )
    name_match: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="What a turn whose speaker the query names gains (and a memory that names that speaker), "
        "in units of one list's first place (1 / (rrf_k + 1)).",
    )
    session: float = Field(
        default=0.9,
        ge=0.0,
        le=2.0,
        description="What a turn in the session holding most of the strongest hits gains (a turn of another "
        "session, or a memory drawn from one: in proportion to its session's share; a hit with no session: "
        "the whole), in units of one list's first place.",
    )
    time: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="Messages and memories: what a hit that happened in the time the query names gains, in "
        'units of one list\'s first place ("on May 3, 2023", "in October 2023", "last week"; see the search docs).',
    )
    memory: float = Field(
        default=1.0,
        ge=0.0,
        le=4.0,
        description="Messages only: weight, in the fusion, of the list of messages that the memories matching "
        "the query were extracted from (their provenance), in the memories' rank order.",
    )
    reply: float = Field(
        default=0.4,
        ge=0.0,
        le=1.0,
        description="Messages only: the turn after a hit that asks a question gains this share of the hit's score "
        "(the answer usually follows the question, and a query often matches the question better).",
    )
    length: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="Messages only: a turn gains this × ln((1 + its words) / (1 + the median candidate turn's "
        "words)), words counted up to 60, in units of one list's first place: a turn longer than its peers "
        'usually says more, and a shorter one (a "Thanks!" or "Wow, cool!" rarely answers anything) loses by '
        "the same rule (the logarithm is negative).",
    )
    graph: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Boost for memories linked to, facts about and entities among the entities the query names.",
    )


class SearchRequest(UserRef):
    query: Query
    agent_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    app_id: uuid.UUID | None = None
    types: list[SearchType] = Field(default_factory=_default_types, min_length=1, max_length=7)
    top_k: int = Field(default=10, ge=1, le=limits.MAX_TOP_K)
    mode: SearchMode = "hybrid"
    rrf_k: int = Field(default=5, ge=1, le=1000, description="Reciprocal rank fusion constant: 1/(k + rank).")
    candidates: int | None = Field(
        default=None,
        ge=1,
        le=limits.MAX_CANDIDATES,
        description="Candidates each retriever contributes before fusion (default: max(50, 5 × top_k)).",
    )
    filters: SearchFilters = Field(default_factory=SearchFilters)
    weights: SearchWeights = Field(default_factory=SearchWeights)
    explain: bool = False


class ScoreExplanation(PublicModel):
    vector_rank: int | None = None
    vector_similarity: float | None = None
    neighbor_similarity: float | None = None
    vector_method: Literal["hnsw", "exact"] | None = None
    keyword_rank: int | None = None
    keyword_score: float | None = None
    memory_rank: int | None = Field(
        default=None, description="Messages: the place among the source messages of the memories that match."
    )
    rrf: float
    recency: float | None = None
    importance: float | None = Field(
        default=None, description="Memories: the effective importance, the stored one times `decay`."
    )
    decay: float | None = Field(
        default=None,
        description="Memories: 2^(−idle/half-life), idle since the memory was last read or confirmed "
        "(the organization's half-life of its type, `GET /v1/decay`; 1 for a type that does not decay).",
    )
    name_match: bool | None = None
    session: float | None = None
    reply: float | None = Field(
        default=None, description="Messages: the score gained as the turn after a question among the hits."
    )
    time_match: bool | None = Field(
        default=None, description="Whether the hit happened in the time the query names (null: it names none)."
    )
    length: float | None = Field(
        default=None,
        description="Messages: the score gained (or lost) for the turn's length against the median candidate turn's.",
    )
    graph_match: bool | None = Field(
        default=None, description="Memories, facts and entities: whether the hit is tied to an entity the query names."
    )
    final: float


class SearchResult(PublicModel):
    """One hit. ``content`` is a message's or memory's text, a fact's statement, an entity's name and
    aliases, a chunk's text, a document's title (else its path), or a context's representative text; the
    fields from ``subject`` to ``aliases`` are set for facts and entities only, those from ``document_id`` to
    ``page`` for chunks and documents (``title`` and ``content_type`` for contexts too), and ``task_id``,
    ``filename`` and ``original_bytes`` for contexts."""

    type: Literal["message", "memory", "fact", "entity", "chunk", "document", "context"]
    id: uuid.UUID
    content: str
    score: float
    session_id: uuid.UUID | None
    user_id: uuid.UUID | None
    occurred_at: datetime | None
    created_at: datetime
    metadata: dict[str, builtins.object]  # the field ``object`` below shadows the builtin in this class
    tags: list[str]
    name: str | None = None
    role: str | None = None
    memory_type: str | None = None
    importance: float | None = None
    subject: str | None = None
    predicate: str | None = None
    object: str | None = None
    subject_id: uuid.UUID | None = None
    object_id: uuid.UUID | None = Field(default=None, description="Set when the fact's object is an entity.")
    valid_from: datetime | None = Field(default=None, description="When the fact became true (event time).")
    valid_until: datetime | None = None
    entity_type: str | None = None
    aliases: list[str] | None = None
    document_id: uuid.UUID | None = None
    repository_id: uuid.UUID | None = None
    path: str | None = None
    title: str | None = None
    content_type: str | None = None
    citation: str | None = Field(
        default=None, description='Where the text sits, e.g. "README.md, section Install › From source, lines 12–30".'
    )
    heading_path: list[str] | None = None
    start_line: int | None = None
    end_line: int | None = None
    page: int | None = None
    task_id: uuid.UUID | None = Field(default=None, description="Contexts: the task it belongs to.")
    filename: str | None = Field(default=None, description="Contexts: the name it was offloaded under.")
    original_bytes: int | None = Field(
        default=None, description="Contexts: its size; restore it with `GET /v1/contexts/{id}/content`."
    )
    explanation: ScoreExplanation | None = None


class SearchResponse(PublicModel):
    results: list[SearchResult]

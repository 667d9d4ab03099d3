"""Entities, bi-temporal facts and graph queries on the wire."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from engramdb import limits
from engramdb.schemas.common import (
    ExternalId,
    Metadata,
    Name,
    NoNul,
    PageQuery,
    PublicModel,
    StrictModel,
    Text,
    Timestamp,
)

EntityType = Literal["person", "place", "organization", "event", "object", "concept", "other"]
FactPart = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_FACT_PART_CHARS), NoNul
]
Aliases = Annotated[list[Name], Field(max_length=limits.MAX_ALIASES)]
# Stored in snake_case ("Lives In" is lives_in): services/graph/predicates.py normalize.
PredicateName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z][A-Za-z0-9_ ]*$")
]
Cardinality = Literal["one", "many"]


class Entity(PublicModel):
    id: uuid.UUID
    user_id: uuid.UUID | None = Field(description="The user this entity belongs to; null: shared by the org.")
    name: str
    type: str
    aliases: list[str]
    summary: str | None
    mention_count: int
    metadata: dict[str, object]
    merged_into: uuid.UUID | None = Field(description="Set when this entity was merged into another.")
    created_at: datetime
    updated_at: datetime


class EntityUpdate(StrictModel):
    name: Name | None = None
    type: EntityType | None = None
    aliases: Aliases | None = None
    summary: Annotated[Text, StringConstraints(max_length=limits.MAX_DESCRIPTION_CHARS)] | None = None
    metadata: Metadata | None = None


class EntityMerge(StrictModel):
    entity_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=limits.MAX_MERGE, description="Entities folded into this one."
    )


class EntitySplit(StrictModel):
    name: Name = Field(description="The new entity's name.")
    type: EntityType | None = None
    aliases: Aliases = Field(default_factory=list, description="Aliases that move to the new entity.")
    fact_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000, description="Facts that move to it.")
    memory_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000, description="Memory links that move.")


class FactCreate(StrictModel):
    subject: FactPart
    predicate: PredicateName
    object: FactPart
    object_is_entity: bool = Field(default=False, description="The object names an entity (a graph edge).")
    subject_type: EntityType = "other"
    object_type: EntityType = "other"
    single_valued: bool | None = Field(
        default=None,
        description="The subject has one object for this predicate at a time: a new one closes the old. Left "
        "out: the predicate's cardinality in the organization's predicate catalogue decides (many when unknown).",
    )
    confidence: Annotated[float, Field(ge=0, le=1)] = 1.0
    valid_from: Timestamp | None = Field(default=None, description="When it became true (event time).")
    valid_until: Timestamp | None = Field(default=None, description="When it stopped being true, if it has.")
    user_id: uuid.UUID | None = None
    external_user_id: ExternalId | None = None
    agent_id: uuid.UUID | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _validity(self) -> FactCreate:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self


class Fact(PublicModel):
    id: uuid.UUID
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    session_id: uuid.UUID | None
    subject_id: uuid.UUID
    object_id: uuid.UUID | None
    subject: str
    predicate: str
    object: str
    statement: str
    confidence: float
    single_valued: bool
    weight: float = Field(description="How many times it was stated (1 + each duplicate mention).")
    valid_from: datetime | None
    valid_until: datetime | None
    recorded_at: datetime
    superseded_at: datetime | None = Field(description="When Engram stopped believing this version (system time).")
    replaces_id: uuid.UUID | None
    invalidated_by: uuid.UUID | None
    source: str
    extractor: str | None
    speaker: str | None
    source_message_ids: list[uuid.UUID]
    metadata: dict[str, builtins.object]


class FactResult(PublicModel):
    fact: Fact
    action: Literal["ADD", "NOOP", "INVALIDATE"]
    invalidated: list[uuid.UUID] = Field(description="Facts whose validity this one closed.")


class GraphEdge(PublicModel):
    fact_id: uuid.UUID
    source_id: uuid.UUID
    target_id: uuid.UUID
    predicate: str
    statement: str
    weight: float
    valid_from: datetime | None
    valid_until: datetime | None


class Neighbourhood(PublicModel):
    entity_id: uuid.UUID
    depth: int
    entities: list[Entity] = Field(description="Reachable entities, nearest first, with the start entity.")
    distances: dict[str, int] = Field(description="Hops from the start entity, by entity id.")
    edges: list[GraphEdge]


class GraphPath(PublicModel):
    entities: list[Entity]
    edges: list[GraphEdge]


class Paths(PublicModel):
    source_id: uuid.UUID
    target_id: uuid.UUID
    paths: list[GraphPath] = Field(description="Shortest paths first; empty when none within max_depth.")


class FactFilters(PageQuery):
    """Which facts: by subject or entity, predicate, owner; ``valid_at`` asks what was true at a time
    (event time), ``known_at`` what Engram believed at a time (system time, default now)."""

    subject: str | None = Field(default=None, max_length=limits.MAX_FACT_PART_CHARS)
    entity_id: uuid.UUID | None = None
    predicate: str | None = Field(default=None, max_length=100)
    user_id: uuid.UUID | None = None
    valid_at: Timestamp | None = Field(default=None, description="Event time: only facts true at this time.")
    known_at: Timestamp | None = Field(
        default=None, description="System time: what Engram believed then (default: now)."
    )
    include_history: bool = Field(default=False, description="Every version, superseded ones too.")


FactQuery = FactFilters  # its name before lists shared one filter model per resource


class EntityFilters(PageQuery):
    """``GET /entities``, newest first; ``q`` finds names and aliases containing it."""

    q: str | None = Field(default=None, max_length=limits.MAX_NAME_CHARS, description="Part of a name or alias.")
    type: EntityType | None = None
    user_id: uuid.UUID | None = None


class Predicate(PublicModel):
    """A predicate of the organization's catalogue: a built-in one, the organization's own, or a built-in
    the organization redefined."""

    name: str = Field(description="In snake_case, as facts store it.")
    cardinality: Cardinality = Field(
        description="one: a subject has one object at a time, so a new fact closes the current one; many: "
        "objects accumulate."
    )
    description: str | None
    source: Literal["builtin", "organization"] = Field(
        description="builtin: Engram's default, untouched; organization: the organization's own definition."
    )
    builtin_cardinality: Cardinality | None = Field(
        description="The built-in cardinality, which deleting the organization's definition brings back; null "
        "for a predicate Engram does not ship."
    )
    updated_at: datetime | None = Field(description="When the organization last set it; null for a built-in.")


class PredicateUpdate(StrictModel):
    """``PUT /predicates/{name}``: the organization's definition, whole."""

    cardinality: Cardinality
    description: Annotated[Text, StringConstraints(max_length=limits.MAX_DESCRIPTION_CHARS)] | None = None


class PredicateFilters(PageQuery):
    """``GET /predicates``, by name."""

    cardinality: Cardinality | None = None
    source: Literal["builtin", "organization"] | None = None

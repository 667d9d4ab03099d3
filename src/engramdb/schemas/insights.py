"""Federated insights: sessions that count something across organizations, participations with their privacy
budgets, and the noisy histograms a session releases (docs/insights.md explains the guarantee)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import Field, StringConstraints, model_validator

from engramdb.schemas.agents import TERMINAL_STATES
from engramdb.schemas.common import Description, Name, NoNul, PageQuery, PublicModel, StrictModel
from engramdb.schemas.memories import MemoryType

InsightQuery = Literal["memory_types", "memory_categories", "fact_predicates", "entity_types", "task_outcomes"]
SessionStatus = Literal["open", "closed"]
SessionRole = Literal["owner", "participant", "invited"]
ParticipationStatus = Literal["invited", "joined", "left"]

# The queries whose buckets are a fixed set: a session may leave ``buckets`` out and count them all.
CLOSED_BUCKETS: dict[str, tuple[str, ...]] = {
    "memory_types": get_args(MemoryType),
    "task_outcomes": TERMINAL_STATES,
}
# The queries over rows that carry a team: a team may join only these (the others count the organization's).
TEAM_QUERIES = frozenset({"memory_types", "memory_categories"})

MAX_BUCKETS = 50
MAX_BOUND = 1_000
MIN_EPSILON = 0.01  # below it the noise is so wide that no count means anything
MAX_RELEASE_EPSILON = 10.0
MAX_EPSILON_BUDGET = 100.0
DEFAULT_EPSILON_BUDGET = 5.0
MIN_PARTICIPANTS = 5  # the floor: no session may release with fewer
MAX_INVITED = 100

Bucket = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]


class InsightSessionCreate(StrictModel):
    """A session: ``query`` counted over ``buckets`` in each participant's data, released under ε-DP."""

    topic: Name
    description: Description | None = None
    query: InsightQuery = Field(
        description="What each participant counts: live memories by type or by category, current facts by "
        "predicate, entities by type, finished tasks by outcome."
    )
    buckets: list[Bucket] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BUCKETS,
        description="The values counted, named up front (a histogram's keys must not come from the data). "
        "Required for categories, predicates and entity types; memory types and task outcomes default to all.",
    )
    bound: int = Field(
        default=1,
        ge=1,
        le=MAX_BOUND,
        description="Each participant's count in each bucket is clamped to this: 1 counts the participants that "
        "have any; more counts volume, with proportionally more noise.",
    )
    epsilon: float = Field(
        default=1.0, ge=MIN_EPSILON, le=MAX_RELEASE_EPSILON, description="ε each release spends (0.01 to 10)."
    )
    min_participants: int = Field(
        default=MIN_PARTICIPANTS,
        ge=MIN_PARTICIPANTS,
        le=MAX_INVITED,
        description="A release with fewer participants (with budget left) is refused.",
    )
    invited_org_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=MAX_INVITED,
        description="The organizations invited to join (yours is always invited).",
    )

    @model_validator(mode="after")
    def _buckets(self) -> InsightSessionCreate:
        closed = CLOSED_BUCKETS.get(self.query)
        if self.buckets is None:
            if closed is None:
                raise ValueError(f"{self.query} needs its buckets named (the values to count)")
            self.buckets = list(closed)
        if len(set(self.buckets)) != len(self.buckets):
            raise ValueError("buckets must not repeat")
        if closed is not None and (unknown := [b for b in self.buckets if b not in closed]):
            raise ValueError(f"{self.query} has no bucket {unknown[0]!r}; its buckets are {', '.join(closed)}")
        return self


class InsightSession(PublicModel):
    id: uuid.UUID
    topic: str
    description: str | None
    query: InsightQuery
    buckets: list[str]
    bound: int
    epsilon: float
    sensitivity: float = Field(description="How much one participant can change the histogram (L1): buckets × bound.")
    noise_scale: float = Field(description="The scale of the discrete Laplace noise in each bucket: sensitivity / ε.")
    expected_abs_error: float = Field(description="The noise's mean absolute size in each bucket, from its scale.")
    min_participants: int
    status: SessionStatus
    role: SessionRole = Field(description="Yours: you opened it, joined it, or are invited to it.")
    participants: int | None = Field(
        description="Participations joined and not left (null in lists: get one session for its count)."
    )
    invited_org_ids: list[uuid.UUID] | None = Field(description="The invited organizations (its owner only).")
    created_at: datetime
    closed_at: datetime | None


class InsightSessionFilters(PageQuery):
    status: SessionStatus | None = None


class ParticipationCreate(StrictModel):
    """Join a session as your organization, or as one of its federated teams (``team_id``)."""

    team_id: uuid.UUID | None = None
    epsilon_budget: float = Field(
        default=DEFAULT_EPSILON_BUDGET,
        ge=MIN_EPSILON,
        le=MAX_EPSILON_BUDGET,
        description="The total ε this participation may spend; releases that would exceed it leave it out.",
    )


class Participation(PublicModel):
    """A participation and its record (its reputation): readable by its own organization only."""

    id: uuid.UUID
    session_id: uuid.UUID
    team_id: uuid.UUID | None
    topic: str
    query: InsightQuery
    status: ParticipationStatus
    session_status: SessionStatus
    epsilon_budget: float | None
    epsilon_spent: float
    epsilon_remaining: float | None
    releases: int = Field(description="Releases this participation was counted in.")
    joined_at: datetime | None
    left_at: datetime | None
    last_released_at: datetime | None


class ParticipationFilters(PageQuery):
    status: ParticipationStatus | None = None


class Contribution(PublicModel):
    id: uuid.UUID
    participant_id: uuid.UUID
    session_id: uuid.UUID
    insight_id: uuid.UUID
    epsilon: float
    buckets_present: int = Field(description="Buckets in which this participant counted anything.")
    clamped_total: int = Field(description="The sum of this participant's counts after clamping to the bound.")
    created_at: datetime


class InsightBucket(PublicModel):
    bucket: str
    count: int = Field(description="The noisy count: the true total plus noise; it may be negative.")


class Insight(PublicModel):
    id: uuid.UUID
    session_id: uuid.UUID
    topic: str
    query: InsightQuery
    histogram: list[InsightBucket]
    mechanism: str
    epsilon: float
    delta: float
    bound: int
    sensitivity: float
    scale: float
    participants: int
    released_at: datetime

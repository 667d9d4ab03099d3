"""Retention policies (what to archive or delete, and when), legal holds (what must not be deleted), and the
reports of retention runs."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from engramdb import limits
from engramdb.schemas.common import Name, NoNul, NotClearable, PageQuery, PublicModel, StrictModel
from engramdb.schemas.memories import MemoryState, MemoryType

RetentionTarget = Literal[
    "memories", "messages", "sessions", "documents", "audit_log", "access_log", "jobs", "webhook_deliveries"
]
RetentionAction = Literal["archive", "delete"]
RetentionBasis = Literal["age", "idle"]
AfterDays = Annotated[int, Field(ge=0, le=36_500, description="Days after which a row is archived or deleted.")]
KeepLatest = Annotated[
    int,
    Field(ge=1, le=1_000_000, description="Keep the newest N rows of each user (of those the policy narrows to)."),
]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_DESCRIPTION_CHARS), NoNul
]

# What each target allows besides ``delete`` by age: the actions, the bases, and the narrowing fields.
ARCHIVABLE: frozenset[str] = frozenset({"memories"})
IDLE: frozenset[str] = frozenset({"memories", "sessions"})
NARROWING: dict[str, frozenset[str]] = {
    "memories": frozenset({"app_id", "team_id", "user_id", "memory_type", "state", "keep_latest"}),
    "messages": frozenset({"app_id", "team_id", "user_id", "keep_latest"}),
    "sessions": frozenset({"app_id", "team_id", "user_id", "keep_latest"}),
    "documents": frozenset({"app_id", "team_id", "user_id", "keep_latest"}),
    "jobs": frozenset({"user_id"}),
    "audit_log": frozenset(),
    "access_log": frozenset(),
    "webhook_deliveries": frozenset(),
}
_NARROWING_FIELDS = ("app_id", "team_id", "user_id", "memory_type", "state", "keep_latest")


def impossible(policy: Mapping[str, Any]) -> list[dict[str, str]]:
    """What a policy (its fields, as stored or sent) asks that its target cannot do, one error per field:
    archiving rows that have no archived state, an idle basis where no last use is kept, a narrowing the
    target's rows do not carry. Empty when the policy is possible."""
    target = policy["target"]
    errors: list[dict[str, str]] = []
    if policy.get("action") == "archive" and target not in ARCHIVABLE:
        errors.append({"field": "action", "message": f"only memories can be archived; {target} can only be deleted"})
    if policy.get("basis") == "idle" and target not in IDLE:
        errors.append(
            {
                "field": "basis",
                "message": f"an idle basis needs a last use: memories and sessions have one, {target} not",
            }
        )
    allowed = NARROWING[target]
    for name in _NARROWING_FIELDS:
        if policy.get(name) is not None and name not in allowed:
            errors.append({"field": name, "message": f"a {target} policy cannot be narrowed by {name}"})
    if policy.get("action") == "archive" and policy.get("state") in {"archived", "deleted"}:
        errors.append({"field": "state", "message": f"an archive policy cannot archive {policy['state']} memories"})
    return errors


class RetentionPolicyCreate(StrictModel):
    """A rule: ``action`` the ``target`` rows older than ``after_days`` (by ``basis``), within the narrowing."""

    name: Name
    target: RetentionTarget
    action: RetentionAction = "delete"
    basis: RetentionBasis = Field(
        default="age",
        description="age: since the row was stored; idle: since a memory was last read or a "
        "session last spoken in (memories and sessions only).",
    )
    after_days: AfterDays
    keep_latest: KeepLatest | None = None
    app_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    memory_type: MemoryType | None = None
    state: MemoryState | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _possible(self) -> RetentionPolicyCreate:
        errors = impossible(self.model_dump())
        if errors:
            raise ValueError("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        return self


class RetentionPolicyUpdate(StrictModel):
    """Any field of a policy; the result must still be possible for its target (which cannot change)."""

    name: NotClearable[Name] = None
    action: NotClearable[RetentionAction] = None
    basis: NotClearable[RetentionBasis] = None
    after_days: NotClearable[AfterDays] = None
    keep_latest: KeepLatest | None = None
    app_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    memory_type: MemoryType | None = None
    state: MemoryState | None = None
    enabled: NotClearable[bool] = None


class RetentionPolicy(PublicModel):
    id: uuid.UUID
    name: str
    target: RetentionTarget
    action: RetentionAction
    basis: RetentionBasis
    after_days: int
    keep_latest: int | None
    app_id: uuid.UUID | None
    team_id: uuid.UUID | None
    user_id: uuid.UUID | None
    memory_type: str | None
    state: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class RetentionPolicyFilters(PageQuery):
    """``GET /retention/policies``, newest first."""

    target: RetentionTarget | None = None
    enabled: bool | None = None


class RetentionRunOptions(StrictModel):
    """The query of a run: ``dry_run=true`` counts what the run would change and changes nothing."""

    dry_run: bool = Field(default=False, description="Count what would be archived or deleted; change nothing.")


class RetentionStep(PublicModel):
    """One step of a run: a policy, or the deletion of expired memories or sessions (``policy_id`` null)."""

    policy_id: uuid.UUID | None = None
    name: str
    target: str
    action: str
    rows: int = Field(description="Rows archived or deleted (in a dry run: that would be).")
    skipped: str | None = Field(default=None, description="Why the step did nothing (a legal hold), if so.")
    partitions_dropped: int = Field(default=0, description="Whole monthly log partitions exported and dropped.")


class RetentionRun(PublicModel):
    id: uuid.UUID
    policy_id: uuid.UUID | None = Field(description="The policy run; null for a run of every policy (a sweep).")
    trigger: Literal["sweep", "manual"]
    dry_run: bool
    counts: dict[str, dict[str, int]] = Field(
        description='Rows per target and action, e.g. {"memories": {"deleted": 12, "archived": 3}}.'
    )
    steps: list[RetentionStep]
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class RetentionRunFilters(PageQuery):
    """``GET /retention/runs``, newest first."""

    policy_id: uuid.UUID | None = None
    trigger: Literal["sweep", "manual"] | None = None
    dry_run: bool | None = None


class LegalHoldCreate(StrictModel):
    """A hold on one user's data (``user_id``) or, without one, on the whole organization's."""

    user_id: uuid.UUID | None = Field(default=None, description="The user held; none: the whole organization.")
    reason: Reason


class LegalHoldUpdate(StrictModel):
    reason: NotClearable[Reason] = None


class LegalHold(PublicModel):
    id: uuid.UUID
    user_id: uuid.UUID | None
    reason: str
    active: bool
    created_at: datetime
    updated_at: datetime
    released_at: datetime | None


class LegalHoldFilters(PageQuery):
    """``GET /legal-holds``, newest first; released holds only with ``include_released=true``."""

    user_id: uuid.UUID | None = None
    include_released: bool = False

"""Organizations, teams, users, agents, apps and API keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from engramdb import limits
from engramdb.schemas.common import (
    Description,
    ExternalId,
    Metadata,
    Name,
    NotClearable,
    PageQuery,
    PublicModel,
    StrictModel,
    Tag,
    Timestamp,
)

Scope = Literal["read", "write", "admin"]
Isolation = Literal["strict", "shared", "federated"]
_ISOLATION_HELP = (
    "strict: no access grant reaches in or out (grants that would are refused, and those that exist stop "
    "applying); shared (the default): grants apply; federated: shared, and contributes to federated insights."
)


def _default_scopes() -> list[Scope]:
    return ["read", "write"]


class OrganizationCreate(StrictModel):
    name: Name


class Organization(PublicModel):
    id: uuid.UUID
    name: str
    metadata: dict[str, object]
    created_at: datetime
    isolation: Isolation = Field(default="shared", description=_ISOLATION_HELP)


class OrganizationUpdate(StrictModel):
    isolation: NotClearable[Isolation] = Field(default=None, description=_ISOLATION_HELP)


class TeamCreate(StrictModel):
    name: Name
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)
    isolation: Isolation = Field(default="shared", description=_ISOLATION_HELP)


class TeamUpdate(StrictModel):
    name: NotClearable[Name] = None
    description: Description | None = None
    metadata: Metadata | None = None
    isolation: NotClearable[Isolation] = Field(default=None, description=_ISOLATION_HELP)


class Team(PublicModel):
    id: uuid.UUID
    name: str
    description: str | None
    metadata: dict[str, object]
    isolation: Isolation
    created_at: datetime
    updated_at: datetime


class UserCreate(StrictModel):
    external_id: ExternalId | None = Field(default=None, description="Your application's own id for this user.")
    display_name: Name | None = None
    email: Name | None = None
    team_id: uuid.UUID | None = None
    metadata: Metadata = Field(default_factory=dict)


class UserUpdate(StrictModel):
    external_id: ExternalId | None = None
    display_name: Name | None = None
    email: Name | None = None
    team_id: uuid.UUID | None = None
    metadata: Metadata | None = None


class User(PublicModel):
    id: uuid.UUID
    external_id: str | None
    display_name: str | None
    email: str | None
    team_id: uuid.UUID | None
    metadata: dict[str, object]
    created_at: datetime
    updated_at: datetime


AgentStatus = Literal["inactive", "active", "busy", "offline", "error"]
Capabilities = Annotated[list[Tag], Field(max_length=limits.MAX_TAGS, description="What the agent can do.")]
HeartbeatInterval = Annotated[
    int,
    Field(
        ge=1,
        le=limits.MAX_HEARTBEAT_INTERVAL_S,
        description="Seconds between heartbeats; silent for this times the grace factor, the agent is offline.",
    ),
]


class AgentCreate(StrictModel):
    name: Name
    description: Description | None = None
    team_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = Field(default=None, description="The user who owns this agent, if any.")
    metadata: Metadata = Field(default_factory=dict)
    type: Name = Field(default="generic", description="What kind of agent this is, e.g. 'planner', 'worker'.")
    status: AgentStatus = "inactive"
    config: Metadata = Field(default_factory=dict)
    capabilities: Capabilities = Field(default_factory=list)
    heartbeat_interval_s: HeartbeatInterval = 30


class AgentUpdate(StrictModel):
    name: NotClearable[Name] = None
    description: Description | None = None
    team_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    metadata: Metadata | None = None
    type: NotClearable[Name] = None
    status: NotClearable[AgentStatus] = None
    config: NotClearable[Metadata] = None
    capabilities: NotClearable[Capabilities] = None
    heartbeat_interval_s: NotClearable[HeartbeatInterval] = None


class Agent(PublicModel):
    id: uuid.UUID
    name: str
    description: str | None
    team_id: uuid.UUID | None
    user_id: uuid.UUID | None
    metadata: dict[str, object]
    created_at: datetime
    updated_at: datetime
    type: str
    status: AgentStatus = Field(
        description="As last reported; `offline` when its heartbeat is older than heartbeat_interval_s times "
        "the grace factor (computed on read, and persisted by the periodic sweep)."
    )
    config: dict[str, object]
    metrics: dict[str, object]
    capabilities: list[str]
    heartbeat_interval_s: int
    last_heartbeat_at: datetime | None

    @model_validator(mode="after")
    def _offline_when_silent(self) -> Agent:
        if self.status in ("active", "busy", "error") and self.last_heartbeat_at is not None:
            silent = (datetime.now(UTC) - self.last_heartbeat_at).total_seconds()
            if silent > self.heartbeat_interval_s * limits.AGENT_OFFLINE_GRACE:
                self.status = "offline"
        return self


class AppCreate(StrictModel):
    name: Name
    description: Description | None = None
    is_active: bool = True
    metadata: Metadata = Field(default_factory=dict)
    isolation: Isolation = Field(default="shared", description=_ISOLATION_HELP)


class AppUpdate(StrictModel):
    name: NotClearable[Name] = None
    description: Description | None = None
    is_active: NotClearable[bool] = None
    metadata: Metadata | None = None
    isolation: NotClearable[Isolation] = Field(default=None, description=_ISOLATION_HELP)


class App(PublicModel):
    id: uuid.UUID
    name: str
    description: str | None
    is_active: bool
    metadata: dict[str, object]
    isolation: Isolation
    created_at: datetime
    updated_at: datetime


class TeamFilters(PageQuery):
    """``GET /teams``, newest first: paging only."""


class UserFilters(PageQuery):
    """``GET /users``, newest first: paging only."""


class AgentFilters(PageQuery):
    """``GET /agents``, newest first: paging only."""


class AppFilters(PageQuery):
    """``GET /apps``, newest first: paging only."""


class ApiKeyCreate(StrictModel):
    name: Name
    scopes: list[Scope] = Field(default_factory=_default_scopes, min_length=1, max_length=3)
    team_id: uuid.UUID | None = Field(default=None, description="Bind the key to one team's data.")
    user_id: uuid.UUID | None = Field(default=None, description="Bind the key to one user's data.")
    external_user_id: ExternalId | None = Field(
        default=None,
        description="Bind the key to one user's data, named by your app's id for them (created if new, as a "
        "write naming an unknown external_user_id creates them).",
    )
    agent_id: uuid.UUID | None = Field(default=None, description="Bind the key to one agent's data.")
    expires_at: Timestamp | None = None

    @model_validator(mode="after")
    def _admin_unbound(self) -> ApiKeyCreate:
        self.scopes = sorted(set(self.scopes))
        if self.user_id is not None and self.external_user_id is not None:
            raise ValueError("give user_id or external_user_id, not both")
        if "admin" in self.scopes and (self.team_id or self.user_id or self.external_user_id or self.agent_id):
            raise ValueError("an admin key cannot be bound to a team, user or agent")
        return self

    @field_validator("expires_at")
    @classmethod
    def _not_expired(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("expires_at is in the past: a key must be valid when it is made")
        return value


class ApiKeyUpdate(StrictModel):
    name: Name


class ApiKey(PublicModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    team_id: uuid.UUID | None
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class ApiKeyFilters(PageQuery):
    """``GET /keys``, newest first."""

    include_revoked: bool = Field(default=False, description="Also list revoked keys.")


class ApiKeyCreated(ApiKey):
    api_key: str = Field(description="The secret key. Shown once: store it now, Engram keeps only a hash.")

"""Organizations, teams, users, agents, apps and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from engramdb.schemas.common import (
    Description,
    ExternalId,
    Metadata,
    Name,
    PublicModel,
    StrictModel,
    Timestamp,
)

Scope = Literal["read", "write", "admin"]


def _default_scopes() -> list[Scope]:
    return ["read", "write"]


class OrganizationCreate(StrictModel):
    name: Name


class Organization(PublicModel):
    id: uuid.UUID
    name: str
    metadata: dict[str, object]
    created_at: datetime


class TeamCreate(StrictModel):
    name: Name
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)


class TeamUpdate(StrictModel):
    name: Name | None = None
    description: Description | None = None
    metadata: Metadata | None = None


class Team(PublicModel):
    id: uuid.UUID
    name: str
    description: str | None
    metadata: dict[str, object]
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


class AgentCreate(StrictModel):
    name: Name
    description: Description | None = None
    team_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = Field(default=None, description="The user who owns this agent, if any.")
    metadata: Metadata = Field(default_factory=dict)


class AgentUpdate(StrictModel):
    name: Name | None = None
    description: Description | None = None
    team_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    metadata: Metadata | None = None


class Agent(PublicModel):
    id: uuid.UUID
    name: str
    description: str | None
    team_id: uuid.UUID | None
    user_id: uuid.UUID | None
    metadata: dict[str, object]
    created_at: datetime
    updated_at: datetime


class AppCreate(StrictModel):
    name: Name
    description: Description | None = None
    is_active: bool = True
    metadata: Metadata = Field(default_factory=dict)


class AppUpdate(StrictModel):
    name: Name | None = None
    description: Description | None = None
    is_active: bool | None = None
    metadata: Metadata | None = None


class App(PublicModel):
    id: uuid.UUID
    name: str
    description: str | None
    is_active: bool
    metadata: dict[str, object]
    created_at: datetime
    updated_at: datetime


class ApiKeyCreate(StrictModel):
    name: Name
    scopes: list[Scope] = Field(default_factory=_default_scopes, min_length=1, max_length=3)
    team_id: uuid.UUID | None = Field(default=None, description="Bind the key to one team's data.")
    user_id: uuid.UUID | None = Field(default=None, description="Bind the key to one user's data.")
    agent_id: uuid.UUID | None = Field(default=None, description="Bind the key to one agent's data.")
    expires_at: Timestamp | None = None

    @model_validator(mode="after")
    def _admin_unbound(self) -> ApiKeyCreate:
        self.scopes = sorted(set(self.scopes))
        if "admin" in self.scopes and (self.team_id or self.user_id or self.agent_id):
            raise ValueError("an admin key cannot be bound to a team, user or agent")
        return self


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


class ApiKeyCreated(ApiKey):
    api_key: str = Field(description="The secret key. Shown once: store it now, Engram keeps only a hash.")

"""Access grants (sharing rules inside an organization) and the isolation levels of teams and apps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from engramdb.schemas.common import Description, PageQuery, PublicModel, StrictModel, Tags, Timestamp
from engramdb.schemas.memories import MemoryType

Permission = Literal["read", "write"]
GrantResource = Literal["memories", "sessions", "documents", "repositories", "facts"]
GrantStatus = Literal["active", "expired", "revoked"]
GRANTEES = ("grantee_team_id", "grantee_user_id", "grantee_agent_id", "grantee_key_id")


class GrantCreate(StrictModel):
    """``permission`` on the rows of ``resource`` that match every narrowing given, for one grantee."""

    permission: Permission = Field(default="read", description="write includes read.")
    resource: GrantResource
    grantee_team_id: uuid.UUID | None = Field(default=None, description="The team (its keys, users and agents).")
    grantee_user_id: uuid.UUID | None = Field(default=None, description="The user (keys bound to them).")
    grantee_agent_id: uuid.UUID | None = Field(default=None, description="The agent (keys bound to it).")
    grantee_key_id: uuid.UUID | None = Field(default=None, description="One API key (bound to a team, user or agent).")
    owner_user_id: uuid.UUID | None = Field(default=None, description="Only this user's rows.")
    app_id: uuid.UUID | None = Field(default=None, description="Only rows of this app.")
    repository_id: uuid.UUID | None = Field(default=None, description="Only this repository (or its documents).")
    session_id: uuid.UUID | None = Field(default=None, description="Only this session (or what was drawn from it).")
    memory_type: MemoryType | None = Field(default=None, description="Only memories of this type.")
    tags: Tags = Field(default_factory=list, description="Only rows with any of these tags.")
    categories: Tags = Field(default_factory=list, description="Only memories in any of these categories.")
    description: Description | None = None
    expires_at: Timestamp | None = Field(default=None, description="When it stops applying (never, if left out).")

    @model_validator(mode="after")
    def _one_grantee(self) -> GrantCreate:
        named = [name for name in GRANTEES if getattr(self, name) is not None]
        if len(named) != 1:
            raise ValueError(f"name exactly one grantee: one of {', '.join(GRANTEES)}")
        return self

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("expires_at is in the past: a grant must be in force when it is made")
        return value


class GrantUpdate(StrictModel):
    """What may change on a grant: when it expires (null: never) and its description. Anything else is a
    new grant (revoke this one)."""

    expires_at: Timestamp | None = None
    description: Description | None = None

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("expires_at is in the past: revoke the grant to end it now")
        return value


class Grant(PublicModel):
    id: uuid.UUID
    permission: Permission
    resource: GrantResource
    grantee_team_id: uuid.UUID | None
    grantee_user_id: uuid.UUID | None
    grantee_agent_id: uuid.UUID | None
    grantee_key_id: uuid.UUID | None
    owner_user_id: uuid.UUID | None
    app_id: uuid.UUID | None
    repository_id: uuid.UUID | None
    session_id: uuid.UUID | None
    memory_type: str | None
    tags: list[str]
    categories: list[str]
    description: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: uuid.UUID | None = Field(description="The API key that made it (none: the operator's CLI).")
    created_at: datetime
    updated_at: datetime
    status: GrantStatus = Field(
        description="active, expired or revoked (an active grant reaching a strict team or app does not apply)."
    )


class GrantFilters(PageQuery):
    """``GET /grants``, newest first: by default the grants in force (neither revoked nor expired)."""

    resource: GrantResource | None = None
    permission: Permission | None = None
    grantee_team_id: uuid.UUID | None = None
    grantee_user_id: uuid.UUID | None = None
    grantee_agent_id: uuid.UUID | None = None
    grantee_key_id: uuid.UUID | None = None
    owner_user_id: uuid.UUID | None = None
    include_inactive: bool = Field(default=False, description="Also list revoked and expired grants.")

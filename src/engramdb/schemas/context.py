"""Context assembly: a prompt-ready block of what Engram knows, within a token budget."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, model_validator

from engramdb import limits
from engramdb.schemas.common import PublicModel
from engramdb.schemas.conversations import UserRef
from engramdb.schemas.search import Query

Section = Literal["summary", "facts", "memories", "messages", "contexts"]


def _all_sections() -> list[Section]:
    return ["summary", "facts", "memories", "messages"]


class ContextRequest(UserRef):
    session_id: uuid.UUID | None = Field(default=None, description="Adds its summary and recent messages.")
    query: Query | None = Field(
        default=None, description="What the agent is about to answer: picks memories and facts."
    )
    token_budget: Annotated[int, Field(ge=limits.MIN_CONTEXT_TOKENS, le=limits.MAX_CONTEXT_TOKENS)] = 1_000
    sections: list[Section] = Field(
        default_factory=_all_sections,
        min_length=1,
        max_length=5,
        description="In this order. `contexts` (offloaded contexts, cited by id to restore) is asked for by name.",
    )
    max_memories: Annotated[int, Field(ge=0, le=limits.MAX_TOP_K)] = 10
    max_facts: Annotated[int, Field(ge=0, le=limits.MAX_TOP_K)] = 20
    recent_messages: Annotated[int, Field(ge=0, le=limits.MAX_TOP_K)] = 10
    max_contexts: Annotated[int, Field(ge=0, le=limits.MAX_TOP_K)] = 3

    @model_validator(mode="after")
    def _needs_scope(self) -> ContextRequest:
        if self.session_id is None and self.user_id is None and self.external_user_id is None:
            raise ValueError("name a session_id, a user_id or an external_user_id")
        return self


class Citation(PublicModel):
    kind: Literal["summary", "fact", "memory", "message", "context"]
    id: uuid.UUID
    section: Section


class ContextResponse(PublicModel):
    context: str = Field(description="The block to put in a prompt, wrapped in <engram-context> markers.")
    token_budget: int
    tokens: int = Field(description="Estimated tokens of `context` (never above the budget; see docs/api.md).")
    citations: list[Citation]
    truncated: bool = Field(description="Something relevant was left out to stay inside the budget.")

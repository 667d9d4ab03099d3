"""Extractors turn conversation turns into candidate memories, facts and entities.

An extractor only proposes; ``services.consolidation`` decides what each candidate does to what is
stored (ADD / UPDATE / NOOP / INVALIDATE). Two built-ins: ``offline`` (rules, no model, no network) and
``llm`` (any OpenAI-compatible chat endpoint). Both implement ``Extractor``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

MemoryType = Literal["fact", "preference", "task", "procedural", "episodic"]
MEMORY_TYPES: tuple[MemoryType, ...] = ("fact", "preference", "task", "procedural", "episodic")
EntityType = Literal["person", "place", "organization", "event", "object", "concept", "other"]
ENTITY_TYPES: tuple[EntityType, ...] = ("person", "place", "organization", "event", "object", "concept", "other")

# Context blocks Engram returns (POST /v1/context) are wrapped in these markers; text between them is
# never extracted again when an agent echoes the block back into a conversation.
INJECTED_OPEN = "<engram-context"
INJECTED_CLOSE = "</engram-context>"
_INJECTED = re.compile(r"<engram-context\b[^>]*>.*?(?:</engram-context>|$)", re.DOTALL)


def strip_injected(text: str) -> str:
    """``text`` without any context block Engram injected (an unclosed block runs to the end)."""
    return _INJECTED.sub(" ", text).strip()


@dataclass(frozen=True)
class Turn:
    """One message given to an extractor. ``name`` is the speaker (falls back to ``role``)."""

    id: uuid.UUID
    role: str
    name: str | None
    content: str
    occurred_at: datetime

    @property
    def speaker(self) -> str:
        return self.name or self.role


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.calls + other.calls,
        )


@dataclass(frozen=True)
class EntityCandidate:
    name: str
    type: EntityType = "other"
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class FactCandidate:
    """A subject–predicate–object triple. ``predicate`` is snake_case (``lives_in``, ``sister_of``).

    ``single_valued``: the subject has one object for this predicate at a time (``lives_in``,
    ``works_at``), so a different object closes the old fact's validity. ``valid_from`` / ``valid_until``
    are event time, when the text says; otherwise the message's ``occurred_at`` is used.
    """

    subject: str
    predicate: str
    object: str
    message_ids: tuple[uuid.UUID, ...]
    speaker: str | None = None
    object_is_entity: bool = False
    subject_type: EntityType = "person"
    object_type: EntityType = "other"
    confidence: float = 0.8
    single_valued: bool = False
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True)
class MemoryCandidate:
    """A self-contained statement worth remembering, in the third person (``Alice moved to Lisbon``)."""

    content: str
    memory_type: MemoryType
    message_ids: tuple[uuid.UUID, ...]
    speaker: str | None = None
    importance: float = 0.5
    entities: tuple[str, ...] = ()
    occurred_at: datetime | None = None  # when the event happened, if the text says
    categories: tuple[str, ...] = ()  # empty: assigned by embedding similarity


@dataclass
class Extraction:
    memories: list[MemoryCandidate] = field(default_factory=list)
    facts: list[FactCandidate] = field(default_factory=list)
    entities: list[EntityCandidate] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


class Extractor(Protocol):
    """``name`` is recorded on every job and memory it produced (``offline``, ``llm:<model>``)."""

    name: str

    async def extract(
        self, turns: Sequence[Turn], *, context: Sequence[Turn] = (), categories: Sequence[str] = ()
    ) -> Extraction:
        """Candidates from ``turns`` (new messages, oldest first). ``context`` holds a few earlier turns of
        the same session, for resolving references only: nothing is extracted from them. ``categories``
        are the names a memory may be filed under."""
        ...


class Summarizer(Protocol):
    name: str

    async def summarize(self, previous: str | None, turns: Sequence[Turn], *, max_chars: int) -> tuple[str, Usage]:
        """A rolling session summary: ``previous`` updated with ``turns``, at most ``max_chars``."""
        ...

    async def narrate(
        self, subject: str, previous: str | None, statements: Sequence[str], *, max_chars: int
    ) -> tuple[str, Usage]:
        """A profile of ``subject`` from the statements (memories and facts) about them."""
        ...

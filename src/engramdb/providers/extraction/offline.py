"""The offline extractor and summarizer: rules only, no model, no network.

This is what Engram runs when no LLM is configured, so it has to be useful on ordinary chat and cheap
enough to run on every message (thousands of messages per second on one core). It trades recall for
precision: a sentence it cannot confidently attribute and rewrite is left out. See ``offline_turns`` for
the steps, ``offline_patterns`` for facts, ``offline_summary`` for summaries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from engramdb.providers.extraction import (
    EntityCandidate,
    Extraction,
    FactCandidate,
    MemoryCandidate,
    Turn,
    Usage,
)
from engramdb.providers.extraction.offline_categories import categorize
from engramdb.providers.extraction.offline_summary import narrate_profile, summarize_points
from engramdb.providers.extraction.offline_turns import Voice, is_display_name, read_turn, voice_of

_NON_WORD = re.compile(r"[^a-z0-9]+")


def extract_offline(turns: Sequence[Turn], context: Sequence[Turn] = (), categories: Sequence[str] = ()) -> Extraction:
    """What the rules find in ``turns``, deduplicated; ``context`` only supplies the speakers' names. Each
    memory is filed under those of ``categories`` its words point to (see ``offline_categories``)."""
    names = frozenset(t.name for t in (*context, *turns) if t.name)
    user: Voice | None = next((voice_of(t) for t in reversed(context) if t.role == "user"), None)
    memories: list[MemoryCandidate] = []
    facts: list[FactCandidate] = []
    entities: list[EntityCandidate] = []
    said: list[str] = [t.name for t in context if t.name]
    for turn in turns:
        reading = read_turn(turn, names=names, user=user, listener=_listener(turn, said, names))
        if turn.name:
            said.append(turn.name)
        memories += reading.memories
        facts += reading.facts
        entities += reading.entities
        if turn.role == "user":
            user = voice_of(turn)
    filed = [
        replace(m, categories=categorize(m.content, m.memory_type, categories)) for m in _unique_memories(memories)
    ]
    return Extraction(filed, _unique_facts(facts), _unique_entities(entities))


def _listener(turn: Turn, said: list[str], names: frozenset[str]) -> str | None:
    """Who "you" is in ``turn``: the last other speaker, or the only other name in the conversation; None
    when that is unknown or an identifier rather than a name (see ``offline_turns.is_display_name``)."""
    if not turn.name:
        return None
    last = next((name for name in reversed(said) if name != turn.name), None)
    others = names - {turn.name}
    listener = last or (next(iter(others)) if len(others) == 1 else None)
    return listener if listener is not None and is_display_name(listener) else None


def normalized(text: str) -> str:
    """The comparison key of a statement: lower case, words only."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def _unique_memories(memories: list[MemoryCandidate]) -> list[MemoryCandidate]:
    """One candidate per statement; a repeat adds its messages and can raise the importance."""
    seen: dict[str, MemoryCandidate] = {}
    for memory in memories:
        key = normalized(memory.content)
        first = seen.get(key)
        if first is None:
            seen[key] = memory
            continue
        seen[key] = replace(
            first,
            message_ids=tuple(dict.fromkeys(first.message_ids + memory.message_ids)),
            importance=max(first.importance, memory.importance),
            entities=tuple(dict.fromkeys(first.entities + memory.entities)),
            occurred_at=first.occurred_at or memory.occurred_at,
        )
    return list(seen.values())


def _unique_facts(facts: list[FactCandidate]) -> list[FactCandidate]:
    seen: dict[tuple[str, str, str, bool], FactCandidate] = {}
    for fact in facts:
        key = (fact.subject.lower(), fact.predicate, normalized(fact.object), fact.valid_until is None)
        first = seen.get(key)
        if first is None:
            seen[key] = fact
            continue
        ids = tuple(dict.fromkeys(first.message_ids + fact.message_ids))
        seen[key] = replace(first, message_ids=ids, confidence=max(first.confidence, fact.confidence))
    return list(seen.values())


def _unique_entities(entities: list[EntityCandidate]) -> list[EntityCandidate]:
    """One entity per name: the first type that is not "other" wins, aliases are pooled."""
    seen: dict[str, EntityCandidate] = {}
    for entity in entities:
        key = entity.name.lower()
        first = seen.get(key)
        if first is None:
            seen[key] = entity
            continue
        kind = first.type if first.type != "other" else entity.type
        aliases = tuple(dict.fromkeys(first.aliases + entity.aliases))
        seen[key] = EntityCandidate(first.name, kind, aliases)
    return list(seen.values())


class OfflineExtractor:
    """Rule-based ``Extractor``. Memories are filed under the built-in ``categories`` by topic words; the
    ones it leaves unfiled (and an organization's own categories) are matched by embedding similarity."""

    name = "offline"

    async def extract(
        self, turns: Sequence[Turn], *, context: Sequence[Turn] = (), categories: Sequence[str] = ()
    ) -> Extraction:
        return extract_offline(turns, context, categories)


class OfflineSummarizer:
    """Extractive ``Summarizer``: the summary is the statements the extractor keeps, as bullet lines."""

    name = "offline"

    async def summarize(self, previous: str | None, turns: Sequence[Turn], *, max_chars: int) -> tuple[str, Usage]:
        return summarize_points(previous, extract_offline(turns).memories, max_chars=max_chars), Usage()

    async def narrate(
        self, subject: str, previous: str | None, statements: Sequence[str], *, max_chars: int
    ) -> tuple[str, Usage]:
        return narrate_profile(subject, previous, statements, max_chars=max_chars), Usage()

"""The ``llm`` extractor and summarizer: prompts from ``providers.prompts``, answers from a :class:`ChatClient`.

The model proposes; this module only makes its answer safe to hand on. Turn indexes become message ids,
types and scores are coerced into range, dates become aware UTC datetimes, empty items are dropped. Nothing
here judges whether a candidate is true or new: that is ``services.consolidation``'s job.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from engramdb.providers.extraction import (
    ENTITY_TYPES,
    MEMORY_TYPES,
    EntityCandidate,
    EntityType,
    Extraction,
    FactCandidate,
    MemoryCandidate,
    MemoryType,
    Turn,
    Usage,
    strip_injected,
)
from engramdb.providers.llm import ChatClient
from engramdb.providers.prompts import extract_v1, summary_v1

_MEMORY_TYPE: dict[str, MemoryType] = {t: t for t in MEMORY_TYPES}
_ENTITY_TYPE: dict[str, EntityType] = {t: t for t in ENTITY_TYPES}


class LLMExtractor:
    """Extraction by any OpenAI-compatible chat model, with the ``extract.v1`` prompt."""

    prompt_version = extract_v1.VERSION

    def __init__(self, client: ChatClient) -> None:
        self._client = client
        self.name = client.name

    async def extract(
        self, turns: Sequence[Turn], *, context: Sequence[Turn] = (), categories: Sequence[str] = ()
    ) -> Extraction:
        if not any(strip_injected(turn.content) for turn in turns):
            return Extraction()  # nothing but echoed context (or nothing at all): not worth a call
        messages = extract_v1.build_messages(turns, context, categories)
        response, usage = await self._client.complete_json(
            messages, extract_v1.ExtractionResponse, schema_name=extract_v1.SCHEMA_NAME
        )
        return to_extraction(response, turns, categories=categories, usage=usage)


class LLMSummarizer:
    """Rolling session summaries and user narratives, with the ``summary.v1`` prompts."""

    prompt_version = summary_v1.VERSION

    def __init__(self, client: ChatClient) -> None:
        self._client = client
        self.name = client.name

    async def summarize(self, previous: str | None, turns: Sequence[Turn], *, max_chars: int) -> tuple[str, Usage]:
        if not turns:
            return truncate(previous or "", max_chars), Usage()
        messages = summary_v1.build_summary_messages(previous, turns, max_chars=max_chars)
        result, usage = await self._client.complete_json(
            messages, summary_v1.SessionSummary, schema_name=summary_v1.SUMMARY_SCHEMA_NAME
        )
        return truncate(result.summary, max_chars), usage

    async def narrate(
        self, subject: str, previous: str | None, statements: Sequence[str], *, max_chars: int
    ) -> tuple[str, Usage]:
        if not statements:
            return truncate(previous or "", max_chars), Usage()
        messages = summary_v1.build_narrative_messages(subject, previous, statements, max_chars=max_chars)
        result, usage = await self._client.complete_json(
            messages, summary_v1.Narrative, schema_name=summary_v1.NARRATIVE_SCHEMA_NAME
        )
        return truncate(result.narrative, max_chars), usage


def to_extraction(
    response: extract_v1.ExtractionResponse,
    turns: Sequence[Turn],
    *,
    categories: Sequence[str] = (),
    usage: Usage | None = None,
) -> Extraction:
    """Candidates from the model's answer about ``turns`` (which its ``[i]`` indexes point into)."""
    allowed = {name.casefold(): name for name in categories}
    out = Extraction(usage=usage or Usage())
    seen_memories: set[str] = set()
    for memory in response.memories:
        content = " ".join(memory.content.split())
        if not content or content.casefold() in seen_memories:
            continue
        seen_memories.add(content.casefold())
        message_ids, speaker = _sources(memory.source_turns, turns)
        out.memories.append(
            MemoryCandidate(
                content=content,
                memory_type=_MEMORY_TYPE.get(memory.type.strip().lower(), "fact"),
                message_ids=message_ids,
                speaker=speaker,
                importance=_score(memory.importance, 0.5),
                entities=_unique(memory.entities),
                occurred_at=parse_date(memory.occurred_on),
                categories=_unique(
                    allowed[c.strip().casefold()] for c in memory.categories if c.strip().casefold() in allowed
                ),
            )
        )
    for fact in response.facts:
        subject, predicate, obj = (
            " ".join(fact.subject.split()),
            snake_case(fact.predicate),
            " ".join(fact.object.split()),
        )
        if not (subject and predicate and obj):
            continue
        message_ids, speaker = _sources(fact.source_turns, turns)
        valid_from, valid_until = parse_date(fact.valid_from), parse_date(fact.valid_until)
        if valid_from and valid_until and valid_until < valid_from:
            valid_until = None  # an inverted interval is a misreading; keep the start, which is likelier right
        out.facts.append(
            FactCandidate(
                subject=subject,
                predicate=predicate,
                object=obj,
                message_ids=message_ids,
                speaker=speaker,
                object_is_entity=fact.object_is_entity,
                subject_type=_ENTITY_TYPE.get(fact.subject_type.strip().lower(), "other"),
                object_type=_ENTITY_TYPE.get(fact.object_type.strip().lower(), "other"),
                confidence=_score(fact.confidence, 0.8),
                single_valued=fact.single_valued,
                valid_from=valid_from,
                valid_until=valid_until,
            )
        )
    seen_entities: set[str] = set()
    for entity in response.entities:
        name = " ".join(entity.name.split())
        if not name or name.casefold() in seen_entities:
            continue
        seen_entities.add(name.casefold())
        aliases = tuple(a for a in _unique(entity.aliases) if a.casefold() != name.casefold())
        out.entities.append(
            EntityCandidate(name=name, type=_ENTITY_TYPE.get(entity.type.strip().lower(), "other"), aliases=aliases)
        )
    return out


def _sources(indexes: Sequence[int], turns: Sequence[Turn]) -> tuple[tuple[uuid.UUID, ...], str | None]:
    """Message ids and speaker of the cited turns; every turn when no index is valid (better than none)."""
    valid = sorted({i for i in indexes if 0 <= i < len(turns)}) or list(range(len(turns)))
    if not valid:
        return (), None
    return tuple(turns[i].id for i in valid), turns[valid[0]].speaker


def _score(value: float, default: float) -> float:
    return min(1.0, max(0.0, value)) if math.isfinite(value) else default


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    """Non-empty names, whitespace collapsed, first spelling of each kept, in order."""
    kept: dict[str, str] = {}
    for raw in names:
        name = " ".join(raw.split())
        if name and name.casefold() not in kept:
            kept[name.casefold()] = name
    return tuple(kept.values())


def snake_case(predicate: str) -> str:
    """``livesIn``, ``Lives In`` and ``lives-in`` all become ``lives_in`` (letters of any script are kept)."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", predicate.strip())
    return re.sub(r"[\W_]+", "_", spaced).strip("_").lower()


def parse_date(value: str | None) -> datetime | None:
    """An aware UTC datetime from an ISO date or datetime (``2024``, ``2024-05`` too); None if unreadable."""
    text = (value or "").strip()
    if re.fullmatch(r"\d{4}", text):
        text += "-01-01"
    elif re.fullmatch(r"\d{4}-\d{2}", text):
        text += "-01"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def truncate(text: str, max_chars: int) -> str:
    """``text`` within ``max_chars``, cut at a word boundary when one is near, marked with an ellipsis."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    if max_chars <= 1:
        return text[: max(max_chars, 0)]
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    if space >= max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"

"""Extractive summaries and profiles: the sentences the extractor keeps, arranged within a size budget.

Without a model nothing can be paraphrased, so a summary is a list of the statements worth keeping, one
bullet each, oldest first. When the budget is exceeded the least important points go first, the oldest
among equals, so a long session keeps its identity facts and plans rather than its small events.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engramdb.providers.extraction import MemoryCandidate
from engramdb.providers.extraction.offline_text import content_words, is_past, words_of
from engramdb.providers.extraction.offline_turns import WEIGHTY

_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_NEAR_DUPLICATE = 0.7  # share of content words two points have in common to count as one
SECTIONS = ("Identity", "Relations", "Likes", "Plans", "Events", "Other")
# Tried in this order; each looks near the statement's start, where its main verb is.
_SECTION_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "Plans",
        re.compile(
            r"^\S+(?:\s+\S+)?\s+(?:\w+\s+)?(?:is\s+going\s+to|will|plans?|is\s+planning|wants?\s+to|hopes?\s+to|"
            r"intends?\s+to|would\s+love\s+to|is\s+thinking\s+(?:about|of)|is\s+looking\s+forward)\b",
            re.I,
        ),
    ),
    ("Events", re.compile(r"\b(?:on|in\s+the\s+week\s+of|on\s+the\s+weekend\s+of)\s+\d{1,2}\s+[A-Z][a-z]+\s+\d{4}\b")),
    (
        "Identity",
        re.compile(
            r"^\S+\s+(?:\w+\s+)?(?:is\s+an?\s|is\s+from|works|lives|lives_in|works_at|occupation|name|age|studies|"
            r"is\s+\d+|has\s+an?\s+(?:dog|cat|pet)|has_pet|born|identifies|moved)",
            re.I,
        ),
    ),
    (
        "Relations",
        re.compile(
            r"'s\s+(?:sister|brother|mother|father|mom|dad|husband|wife|son|daughter|friends?|partner|boyfriend|"
            r"girlfriend|kids|children|family|cousin|aunt|uncle|grand\w+|boss|coworker|colleague)\b|"
            r"\b(?:married|dating|spouse|partner)\b",
            re.I,
        ),
    ),
    (
        "Likes",
        re.compile(
            r"^\S+\s+(?:\w+\s+)?(?:loves|likes|enjoys|prefers|hates|dislikes|is\s+(?:\w+\s+)?passionate|"
            r"is\s+(?:a\s+)?(?:big\s+|huge\s+)?fan)\b|\bfavou?rite",
            re.I,
        ),
    ),
)


@dataclass(frozen=True)
class _Point:
    text: str
    importance: float
    order: int


def points_of(text: str | None) -> list[str]:
    """The points of an earlier summary: its bullet lines, or its lines when it has no bullets."""
    if not text:
        return []
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [_BULLET.sub("", line) for line in lines if not line.endswith(":")]


def estimated_importance(text: str) -> float:
    """For a point read back from an earlier summary, whose importance was not kept."""
    return 0.65 if WEIGHTY.search(text) else 0.5


def _key(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in content_words(words_of(text)))


def _near(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return a == b
    return len(a & b) / min(len(a), len(b)) >= _NEAR_DUPLICATE


def _render(points: Sequence[_Point]) -> str:
    return "\n".join(f"- {p.text}" for p in sorted(points, key=lambda p: p.order))


def summarize_points(previous: str | None, memories: Sequence[MemoryCandidate], *, max_chars: int) -> str:
    """``previous`` with the new memories appended as bullets, trimmed to ``max_chars``."""
    points = [_Point(text, estimated_importance(text), i) for i, text in enumerate(points_of(previous))]
    keys = [_key(p.text) for p in points]
    for memory in memories:
        key = _key(memory.content)
        if any(_near(key, other) for other in keys):
            continue
        points.append(_Point(memory.content, memory.importance, len(points)))
        keys.append(key)
    while len(points) > 1 and len(_render(points)) > max_chars:
        points.remove(min(points, key=lambda p: (p.importance, p.order)))
    return _clip(_render(points), max_chars)


def _clip(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    return text[: max(max_chars - 1, 0)].rstrip() + "\u2026" if max_chars > 0 else ""


def section_of(statement: str) -> str:
    """Which part of a profile a statement belongs to; a past event without a date is an event too."""
    for section, pattern in _SECTION_RULES:
        if pattern.search(statement):
            return section
    words = statement.split()
    return "Events" if len(words) > 1 and is_past(words[1]) else "Other"


def narrate_profile(subject: str, previous: str | None, statements: Sequence[str], *, max_chars: int) -> str:
    """A profile of ``subject``: statements grouped by section, newest first within a section when the
    budget forces a choice, so every section keeps something."""
    items: list[str] = []
    keys: list[frozenset[str]] = []
    for statement in [*points_of(previous), *statements]:
        text = " ".join(statement.replace("_", " ").split())
        key = _key(text)
        if not text:
            continue
        duplicate = next((i for i, other in enumerate(keys) if _near(key, other)), None)
        if duplicate is not None:  # the newer wording wins
            del items[duplicate], keys[duplicate]
        items.append(text if text.endswith((".", "!", "?")) else f"{text}.")
        keys.append(key)
    by_section: dict[str, list[tuple[int, str]]] = {s: [] for s in SECTIONS}
    for order, text in enumerate(items):
        by_section[section_of(text)].append((order, text))
    chosen: dict[str, list[tuple[int, str]]] = {s: [] for s in SECTIONS}
    queues = {s: list(reversed(v)) for s, v in by_section.items()}
    while any(queues.values()):
        for section in SECTIONS:
            if queues[section]:
                candidate = queues[section].pop(0)
                chosen[section].append(candidate)
                if len(_render_profile(chosen)) > max_chars:
                    chosen[section].pop()
    return _clip(_render_profile(chosen), max_chars)


def _render_profile(chosen: dict[str, list[tuple[int, str]]]) -> str:
    blocks = []
    for section in SECTIONS:
        if chosen[section]:
            lines = "\n".join(f"- {text}" for _, text in sorted(chosen[section]))
            blocks.append(f"{section}:\n{lines}")
    return "\n\n".join(blocks)

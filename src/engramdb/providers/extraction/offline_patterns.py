"""Facts (subject–predicate–object triples) read from first-person sentences by pattern.

Each rule recognises one way people state a lasting fact about themselves ("my sister Anna", "I moved
to Lisbon", "I'm allergic to peanuts"). The subject is always the speaker. The rules read the sentence
as spoken (first person, after ``offline_text.normalize``), where the patterns are simplest.
Single-valued predicates (``lives_in``, ``works_at``, …) let consolidation close the previous value when
a new one arrives, so only predicates where that is right are marked so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from engramdb.providers.extraction import EntityType
from engramdb.providers.extraction.offline_words import NOT_NAMES, OCCUPATIONS, PETS, RELATIONS

ObjectKind = Literal["person", "place", "org", "phrase", "number", "name"]

_ADV = r"(?:(?:really|also|just|still|currently|now|actually|totally|absolutely|definitely|truly|recently|finally|" \
    r"officially|originally|even|always|absolutely|kind of|sort of|so|all)\s+)*"  # fmt: skip
_I = rf"\bI\s+{_ADV}"
_IM = rf"\bI(?:'m|\s+am)\s+{_ADV}"
_NAME = r"(?P<obj>[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b"
_OBJ = r"(?P<obj>[^,;:.!?()\"]+)"
_REL = "|".join(sorted(RELATIONS, key=len, reverse=True))
_REL_ADJ = r"(?:(?:little|big|older|younger|elder|best|old|new|dear|lovely|amazing|twin|baby|youngest|oldest|eldest)\s+)*"
_PET = "|".join(sorted(PETS, key=len, reverse=True))


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    predicate: str  # "{rel}" / "favorite_{what}": filled from the match
    kind: ObjectKind
    single_valued: bool = False
    ended: bool = False  # the fact stopped being true ("I no longer live in …")
    confidence: float = 0.8


def _rule(pattern: str, predicate: str, kind: ObjectKind, **options: bool | float) -> _Rule:
    flags = 0 if kind in ("person", "name") else re.IGNORECASE
    return _Rule(re.compile(pattern, flags), predicate, kind, **options)  # type: ignore[arg-type]


_RULES: tuple[_Rule, ...] = (
    _rule(rf"\b[Mm]y\s+{_REL_ADJ}(?P<rel>{_REL})(?:,\s*|\s+)(?:named\s+|called\s+)?{_NAME}", "{rel}", "person",
          confidence=0.9),  # fmt: skip
    _rule(rf"{_NAME}(?:,|\s+is)\s+my\s+{_REL_ADJ}(?P<rel>{_REL})\b", "{rel}", "person", confidence=0.9),
    _rule(rf"\b[Mm]y\s+{_REL_ADJ}(?P<rel>{_REL})'s\s+name\s+is\s+{_NAME}", "{rel}", "person", confidence=0.9),
    _rule(rf"\b(?:[Mm]y|[Oo]ur)\s+(?:new\s+|little\s+|old\s+)?(?:{_PET}),?\s+(?:named\s+|called\s+)?{_NAME}",
          "has_pet", "name"),  # fmt: skip
    _rule(rf"\b(?:a|an)\s+(?:\w+\s+)?(?:{_PET})\s+(?:named|called)\s+{_NAME}", "has_pet", "name"),
    _rule(rf"{_I}(?:have|got|adopted)\s+(?P<obj>(?:a|an|two|three|\d+)\s+(?:\w+\s+)?(?:{_PET})s?)\b", "has_pet",
          "phrase"),  # fmt: skip
    _rule(rf"\b[Mm]y\s+name\s+is\s+{_NAME}", "name", "person", single_valued=True, confidence=0.95),
    _rule(rf"{_I}(?:no\s+longer|don't|do\s+not)\s+live\s+in\s+{_OBJ}", "lives_in", "place", ended=True),
    _rule(rf"{_I}used\s+to\s+live\s+in\s+{_OBJ}", "lives_in", "place", ended=True),
    _rule(rf"{_I}(?:live|lived|reside)\s+in\s+{_OBJ}", "lives_in", "place", single_valued=True),
    _rule(rf"\bI(?:'m|\s+am|'ve\s+been|\s+have\s+been)\s+{_ADV}living\s+in\s+{_OBJ}", "lives_in", "place",
          single_valued=True),  # fmt: skip
    _rule(rf"(?:{_I}|^){_ADV}(?:moved|relocated)\s+(?:back\s+)?(?:to|into)\s+{_OBJ}", "lives_in", "place",
          single_valued=True),  # fmt: skip
    _rule(rf"{_IM}from\s+{_OBJ}", "from", "place"),
    _rule(rf"{_I}(?:grew\s+up|was\s+raised)\s+in\s+{_OBJ}", "from", "place"),
    _rule(rf"{_I}was\s+born\s+in\s+{_OBJ}", "born_in", "place", single_valued=True),
    _rule(rf"{_I}(?:no\s+longer|don't|do\s+not)\s+work\s+(?:at|for)\s+{_OBJ}", "works_at", "org", ended=True),
    _rule(rf"(?:{_I}|^){_ADV}(?:lost|quit|left)\s+my\s+(?:\w+\s+)?job\s+(?:at|with)\s+{_OBJ}", "works_at", "org",
          ended=True),  # fmt: skip
    _rule(rf"(?:{_I}|^){_ADV}(?:lost|quit|left)\s+my\s+job\s+as\s+(?:a|an)\s+{_OBJ}", "occupation", "phrase",
          ended=True),  # fmt: skip
    _rule(rf"(?:{_I}|{_IM}|I've\s+been\s+|^){_ADV}(?:work|worked|working|interning|intern)\s+(?:at|for)\s+{_OBJ}",
          "works_at", "org", single_valued=True),  # fmt: skip
    _rule(rf"(?:{_I}|^){_ADV}(?:got|landed|accepted|started)\s+(?:a|my|the)\s+(?:new\s+)?(?:job|position|role)\s+"
          rf"(?:at|with)\s+{_OBJ}", "works_at", "org", single_valued=True),  # fmt: skip
    _rule(rf"(?:{_I}|^){_ADV}(?:work|worked|working)\s+as\s+(?:a|an)\s+{_OBJ}", "occupation", "phrase",
          single_valued=True),  # fmt: skip
    _rule(rf"(?:{_IM}(?:a|an)|(?:{_I}|^)became\s+(?:a|an))\s+(?P<obj>(?:[\w-]+\s+){{0,2}}?(?:"
          + "|".join(sorted(OCCUPATIONS, key=len, reverse=True))
          + r"))\b(?!\s+(?:at\s+heart|fan|lover))", "occupation", "phrase", single_valued=True),  # fmt: skip
    _rule(rf"{_IM}(?P<obj>\d{{1,3}})\s*(?:years?\s+old|yrs?\s+old|y/?o)\b", "age", "number", single_valued=True),
    _rule(rf"(?:{_I}|^){_ADV}turned\s+(?P<obj>\d{{1,3}})\b", "age", "number", single_valued=True),
    _rule(rf"{_IM}(?:happily\s+)?married\s+to\s+{_NAME}", "spouse", "person", single_valued=True),
    _rule(rf"\bI\s+{_ADV}(?:got\s+)?married\s+{_NAME}", "spouse", "person", single_valued=True),
    _rule(rf"\bI(?:'m|\s+am)\s+{_ADV}(?:dating|engaged\s+to|in\s+a\s+relationship\s+with)\s+{_NAME}", "partner",
          "person", single_valued=True),  # fmt: skip
    _rule(rf"\b[Mm]y\s+(?:all-time\s+|absolute\s+)?favorite\s+(?P<what>[a-z]+(?:\s+[a-z]+)?)\s+(?:is|was|has\s+"
          rf"to\s+be|would\s+be|right\s+now\s+is)\s+{_OBJ}", "favorite_{what}", "phrase", single_valued=True),  # fmt: skip
    _rule(rf"{_I}(?:hate|dislike|detest|can't\s+stand|cannot\s+stand|don't\s+like|do\s+not\s+like|don't\s+enjoy)"
          rf"\s+{_OBJ}", "dislikes", "phrase", confidence=0.7),  # fmt: skip
    _rule(rf"{_IM}not\s+(?:a\s+(?:big\s+)?fan\s+of|into)\s+{_OBJ}", "dislikes", "phrase", confidence=0.7),
    _rule(rf"(?:{_I}(?:love|like|enjoy|adore)|^{_ADV}(?:love|enjoy|adore))\s+{_OBJ}", "likes", "phrase", confidence=0.7),
    _rule(rf"{_IM}(?:into|passionate\s+about|obsessed\s+with|crazy\s+about|a\s+(?:big\s+|huge\s+)?fan\s+of)\s+"
          rf"{_OBJ}", "likes", "phrase", confidence=0.7),  # fmt: skip
    _rule(rf"(?:{_I}|{_IM}|^){_ADV}(?:study|studied|studying|major\s+in|majored\s+in|majoring\s+in)\s+{_OBJ}",
          "studies", "phrase"),  # fmt: skip
    _rule(rf"(?:{_I}|{_IM}){_ADV}(?:go\s+to|attend|attending|a\s+student\s+at)\s+(?P<obj>(?:the\s+)?[A-Z][\w ]*?"
          r"(?:University|College|School|Academy|Institute)(?:\s+of\s+[A-Z]\w+)?)", "attends", "org"),  # fmt: skip
    _rule(rf"{_IM}(?:very\s+|severely\s+|super\s+|deathly\s+)?allergic\s+to\s+{_OBJ}", "allergic_to", "phrase",
          confidence=0.9),  # fmt: skip
    _rule(rf"(?:{_I}|^){_ADV}(?:started|began|took\s+up|picked\s+up)\s+{_OBJ}", "started", "phrase",
          confidence=0.6),  # fmt: skip
    _rule(rf"(?:{_I}|^){_ADV}(?:quit|gave\s+up)\s+{_OBJ}", "quit", "phrase", confidence=0.6),
    _rule(rf"{_IM}(?:planning|hoping|intending|aiming|thinking\s+about|thinking\s+of)\s+(?:to\s+|on\s+)?{_OBJ}",
          "plans", "phrase", confidence=0.6),  # fmt: skip
    _rule(rf"{_IM}going\s+to\s+(?!(?:the|a|an|my|his|her|their|our|this|that|be\s+there)\b){_OBJ}", "plans",
          "phrase", confidence=0.6),  # fmt: skip
    _rule(rf"{_I}(?:plan|intend|hope)\s+to\s+{_OBJ}", "plans", "phrase", confidence=0.6),
)

_CUT = re.compile(
    r"\s+(?:and|but|because|so|since|which|who|where|when|while|if|though|although|as\s+well|after|before|"
    r"until|now|anymore|too|lol|haha|as|than|with\s+my|with\s+our|for\s+(?:a|the)\s+(?:while|bit|few)|"
    r"right\s+now|these\s+days|lately|nowadays|again|at\s+the\s+moment)\b.*$|\s+-\s.*$",
    re.IGNORECASE,
)
_DATE_TAIL = re.compile(
    r"\s+(?:on|in|during|since|last|next|this|yesterday|today|tonight|tomorrow|back\s+in|a\s+few|a\s+couple|"
    r"(?:\w+\s+)?(?:days?|weeks?|months?|years?)\s+ago)\b.*$",
    re.IGNORECASE,
)
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an|to|some|all|my|our)\s+", re.IGNORECASE)
_VAGUE = frozenset(
    "it that this them you your those these how what when where who everything something anything so seeing "
    "hearing knowing here there one ones him her his".split()
)
_PLACE_STOP = re.compile(r"\s+(?:in|at|on|for|to|with|by|near|from)\s.*$")
_MAX_WORDS = 6


def _tidy(text: str, kind: ObjectKind, date_span: tuple[int, int] | None, offset: int) -> str | None:
    """The object phrase cut at its clause's end, without articles or a date, or None if nothing is left."""
    if date_span is not None and offset <= date_span[0] < offset + len(text):
        text = text[: date_span[0] - offset]
    text = _CUT.sub("", text.strip())
    text = _DATE_TAIL.sub("", text) if kind not in ("number",) else text
    if kind == "place":
        text = _PLACE_STOP.sub("", text)
    text = _LEADING_ARTICLE.sub("", _LEADING_ARTICLE.sub("", text.strip()))
    words = text.strip(" '\"-").split()
    if not words or words[0].lower() in _VAGUE or len(words) > _MAX_WORDS + 2:
        return None
    if kind in ("place", "person", "name") and (not words[0][0].isupper() or words[0] in NOT_NAMES):
        return None
    return " ".join(words[:_MAX_WORDS])


@dataclass(frozen=True)
class Found:
    """A fact read from a sentence, before the speaker, messages and dates are attached."""

    predicate: str
    object: str
    object_type: EntityType
    object_is_entity: bool
    single_valued: bool
    ended: bool
    confidence: float
    alias: str | None = None  # "sister" for the person named in "my sister Anna"


_OBJECT_TYPE: dict[ObjectKind, EntityType] = {
    "person": "person",
    "place": "place",
    "org": "organization",
    "name": "other",
    "phrase": "other",
    "number": "other",
}


def find_facts(sentence: str, date_span: tuple[int, int] | None = None) -> list[Found]:
    """The facts ``sentence`` states about its speaker; ``date_span`` is cut out of any object."""
    found: list[Found] = []
    taken: set[str] = set()
    for rule in _RULES:
        match = rule.pattern.search(sentence)
        if match is None:
            continue
        groups = match.groupdict()
        obj = _tidy(match.group("obj"), rule.kind, date_span, match.start("obj"))
        predicate = rule.predicate.format(
            rel=RELATIONS.get(groups.get("rel") or "", ""),
            what="_".join((groups.get("what") or "").lower().split()),
        )
        if obj is None or predicate in taken or (rule.kind == "person" and predicate == "name" and " " in obj):
            continue
        taken.add(predicate)
        entity = rule.kind in ("person", "place", "name") or (rule.kind == "org" and obj[0].isupper())
        found.append(
            Found(
                predicate,
                obj,
                _OBJECT_TYPE[rule.kind],
                entity,
                rule.single_valued,
                rule.ended,
                rule.confidence,
                alias=predicate if groups.get("rel") else None,
            )
        )
    return found


def fact_dates(found: Found, event: datetime | None, said_at: datetime) -> tuple[datetime | None, datetime | None]:
    """(valid_from, valid_until): an ended fact ends at the event date or when it was said."""
    if found.ended:
        return None, event or said_at
    return event, None

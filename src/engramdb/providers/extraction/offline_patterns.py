"""Facts (subject–predicate–object triples) read from first-person sentences by pattern.

Each rule recognises one way people state a lasting fact about themselves ("my sister Anna", "I moved
to Lisbon", "I'm allergic to peanuts"). The subject is always the speaker. The rules read the sentence
as spoken (first person, after ``offline_text.normalize``), where the patterns are simplest.
Single-valued predicates (``lives_in``, ``works_at``, …) let consolidation close the previous value when
a new one arrives: which those are is the built-in predicate list (``predicates.BUILTIN``), the same one
every organization's predicate catalogue starts from; a rule marks only what that list cannot name
(``favorite_{what}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from engramdb.providers.extraction import EntityType, predicates
from engramdb.providers.extraction.dates import DateMention
from engramdb.providers.extraction.offline_words import (
    NOT_NAMES,
    OCCUPATIONS,
    PETS,
    RELATIONS,
    SECOND_PERSON,
    STOPWORDS,
    spellings,
)

ObjectKind = Literal["person", "place", "org", "phrase", "number", "name"]

_ADV = (
    r"(?:(?:really|also|just|still|currently|now|actually|totally|absolutely|definitely|truly|recently|finally|"
    r"officially|originally|even|always|kind of|sort of|kinda|sorta|so|all)\s+)*"
)
_I = rf"\bI\s+{_ADV}"
_IM = rf"\bI(?:'m|\s+am)\s+{_ADV}"
_NAME = r"(?P<obj>[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b"
_OBJ = r"(?P<obj>[^,;:.!?()\"]+)"
_REL = "|".join(sorted(RELATIONS, key=len, reverse=True))
_REL_ADJ = (
    r"(?:(?:little|big|older|younger|elder|best|old|new|dear|lovely|amazing|twin|baby|youngest|oldest|eldest)\s+)*"
)
_PET = "|".join(sorted(PETS, key=len, reverse=True))


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    predicate: str  # "{rel}" / "favorite_{what}": filled from the match
    kind: ObjectKind
    single_valued: bool = False  # for a predicate the built-in list does not name (a templated one)
    ended: bool = False  # the fact stopped being true ("I no longer live in …")
    confidence: float = 0.8


def _rule(
    pattern: str,
    predicate: str,
    kind: ObjectKind,
    *,
    single_valued: bool = False,
    ended: bool = False,
    confidence: float = 0.8,
) -> _Rule:
    """A rule; names must be capitalised, so rules whose object is a name are case-sensitive. An ended fact
    is never single-valued: "I used to live in Paris" must not close where the speaker lives now."""
    flags = 0 if kind in ("person", "name") else re.IGNORECASE
    return _Rule(re.compile(pattern, flags), predicate, kind, single_valued and not ended, ended, confidence)


# A rule is only tried on a sentence holding one of its predicate's words: most sentences state no fact,
# and the word test is far cheaper than the patterns.
_CUES: dict[str, frozenset[str]] = {
    "{rel}": frozenset(RELATIONS),
    "has_pet": PETS | {f"{pet}s" for pet in PETS},
    "name": frozenset({"name"}),
    "lives_in": frozenset({"live", "lived", "reside", "living", "moved", "relocated"}),
    "from": frozenset({"from", "grew", "raised"}),
    "born_in": frozenset({"born"}),
    "works_at": frozenset({"work", "worked", "working", "interning", "intern", "job", "position", "role"}),
    "occupation": OCCUPATIONS | {"job", "work", "worked", "working", "became"},
    "age": frozenset({"old", "yrs", "yo", "y/o", "turned"}),
    "spouse": frozenset({"married"}),
    "partner": frozenset({"dating", "engaged", "relationship"}),
    "favorite_{what}": frozenset({"favorite", "favourite", "fave", "fav"}),
    "dislikes": frozenset({"hate", "dislike", "detest", "stand", "like", "enjoy", "fan", "into"}),
    "likes": frozenset({"love", "like", "enjoy", "adore", "into", "passionate", "obsessed", "crazy", "fan"}),
    "studies": frozenset({"study", "studied", "studying", "major", "majored", "majoring"}),
    "attends": frozenset({"university", "college", "school", "academy", "institute"}),
    "allergic_to": frozenset({"allergic"}),
    "started": frozenset({"started", "began", "took", "picked"}),
    "quit": frozenset({"quit", "gave"}),
    "plans": frozenset(
        {"planning", "hoping", "intending", "aiming", "thinking", "going", "gonna", "plan", "intend", "hope"}
    ),
}
# Predicates that say who someone is (a sentence stating one is a fact), and those a dated change starts.
IDENTITY = frozenset(
    "lives_in from born_in works_at occupation name age spouse partner attends studies has_pet".split()
) | frozenset(RELATIONS.values())
_CHANGES = frozenset("lives_in works_at occupation started quit has_pet spouse partner attends studies".split())
_TOKEN = re.compile(r"[a-z'/-]+")


_RULES: tuple[_Rule, ...] = (
    _rule(
        rf"\b[Mm]y\s+{_REL_ADJ}(?P<rel>{_REL})(?:,\s*|\s+)(?:named\s+|called\s+)?{_NAME}",
        "{rel}",
        "person",
        confidence=0.9,
    ),
    _rule(rf"{_NAME}(?:,|\s+is)\s+my\s+{_REL_ADJ}(?P<rel>{_REL})\b(?!')", "{rel}", "person", confidence=0.9),
    _rule(rf"\b[Mm]y\s+{_REL_ADJ}(?P<rel>{_REL})'s\s+name\s+is\s+{_NAME}", "{rel}", "person", confidence=0.9),
    _rule(
        rf"\b(?:[Mm]y|[Oo]ur)\s+(?:new\s+|little\s+|old\s+)?(?:{_PET}),?\s+(?:named\s+|called\s+)?{_NAME}",
        "has_pet",
        "name",
    ),
    _rule(rf"\b(?:a|an)\s+(?:\w+\s+)?(?:{_PET})\s+(?:named|called)\s+{_NAME}", "has_pet", "name"),
    _rule(
        rf"{_I}(?:have|got|adopted)\s+(?P<obj>(?:a|an|two|three|\d+)\s+(?:\w+\s+)?(?:{_PET})s?)\b", "has_pet", "phrase"
    ),
    _rule(rf"\b[Mm]y\s+name\s+is\s+{_NAME}", "name", "person", confidence=0.95),
    _rule(rf"{_I}(?:no\s+longer|don'?t|do\s+not)\s+live\s+in\s+{_OBJ}", "lives_in", "place", ended=True),
    _rule(rf"{_I}(?:used\s+to\s+live|lived)\s+in\s+{_OBJ}", "lives_in", "place", ended=True),
    _rule(rf"{_I}(?:live|reside)\s+in\s+{_OBJ}", "lives_in", "place"),
    _rule(
        rf"\bI(?:'m|\s+am|'ve\s+been|\s+have\s+been|'ve|\s+have)\s+{_ADV}(?:living|lived)\s+in\s+{_OBJ}",
        "lives_in",
        "place",
    ),
    _rule(
        rf"(?:{_I}|^){_ADV}(?:moved|relocated)\s+(?:back\s+)?(?:to|into)\s+{_OBJ}",
        "lives_in",
        "place",
    ),
    _rule(rf"{_IM}from\s+{_OBJ}", "from", "place"),
    _rule(rf"{_I}(?:grew\s+up|was\s+raised)\s+in\s+{_OBJ}", "from", "place"),
    _rule(rf"{_I}was\s+born\s+in\s+{_OBJ}", "born_in", "place"),
    _rule(rf"{_I}(?:no\s+longer|don'?t|do\s+not)\s+work\s+(?:at|for)\s+{_OBJ}", "works_at", "org", ended=True),
    _rule(
        rf"(?:{_I}|^){_ADV}(?:lost|quit|left)\s+my\s+(?:\w+\s+)?job\s+(?:at|with)\s+{_OBJ}",
        "works_at",
        "org",
        ended=True,
    ),
    _rule(
        rf"(?:{_I}|^){_ADV}(?:lost|quit|left)\s+my\s+job\s+as\s+(?:a|an)\s+{_OBJ}", "occupation", "phrase", ended=True
    ),
    _rule(
        rf"(?:{_I}|{_IM}|I've\s+been\s+|^){_ADV}(?:work|worked|working|interning|intern)\s+(?:at|for)\s+{_OBJ}",
        "works_at",
        "org",
    ),
    _rule(
        rf"(?:{_I}|^){_ADV}(?:got|landed|accepted|started)\s+(?:a|my|the)\s+(?:new\s+)?(?:job|position|role)\s+"
        rf"(?:at|with)\s+{_OBJ}",
        "works_at",
        "org",
    ),
    _rule(rf"(?:{_I}|^){_ADV}(?:work|worked|working)\s+as\s+(?:a|an)\s+{_OBJ}", "occupation", "phrase"),
    _rule(
        rf"(?:{_IM}(?:a|an)|(?:{_I}|^)became\s+(?:a|an))\s+(?P<obj>(?:[\w-]+\s+){{0,2}}?(?:"
        + "|".join(sorted(OCCUPATIONS, key=len, reverse=True))
        + r"))\b(?!\s+(?:at\s+heart|fan|lover))",
        "occupation",
        "phrase",
    ),
    _rule(rf"{_IM}(?P<obj>\d{{1,3}})\s*(?:years?\s+old|yrs?\s+old|y/?o)\b", "age", "number"),
    _rule(rf"(?:{_I}|^){_ADV}turned\s+(?P<obj>\d{{1,3}})\b", "age", "number"),
    _rule(rf"{_IM}(?:happily\s+)?married\s+to\s+{_NAME}", "spouse", "person"),
    _rule(rf"\bI\s+{_ADV}(?:got\s+)?married\s+{_NAME}", "spouse", "person"),
    _rule(
        rf"\bI(?:'m|\s+am)\s+{_ADV}(?:dating|engaged\s+to|in\s+a\s+relationship\s+with)\s+{_NAME}",
        "partner",
        "person",
    ),
    _rule(
        rf"\b[Mm]y\s+(?:all-time\s+|absolute\s+)?{spellings('favorite')}\s+(?P<what>[a-z]+(?:\s+[a-z]+)?)\s+"
        rf"(?:is|was|has\s+to\s+be|would\s+be|right\s+now\s+is)\s+{_OBJ}",
        "favorite_{what}",
        "phrase",
        single_valued=True,
    ),
    _rule(
        rf"{_I}(?:hate|dislike|detest|can'?t\s+stand|cannot\s+stand|don'?t\s+like|do\s+not\s+like|don'?t\s+enjoy)"
        rf"\s+{_OBJ}",
        "dislikes",
        "phrase",
        confidence=0.7,
    ),
    _rule(rf"{_IM}not\s+(?:a\s+(?:big\s+)?fan\s+of|into)\s+{_OBJ}", "dislikes", "phrase", confidence=0.7),
    _rule(
        rf"(?:{_I}(?:love|like|enjoy|adore)|^{_ADV}(?:love|enjoy|adore))\s+{_OBJ}", "likes", "phrase", confidence=0.7
    ),
    _rule(
        rf"{_IM}(?:into|passionate\s+about|obsessed\s+with|crazy\s+about|a\s+(?:big\s+|huge\s+)?fan\s+of)\s+"
        rf"{_OBJ}",
        "likes",
        "phrase",
        confidence=0.7,
    ),
    _rule(
        rf"(?:{_I}|{_IM}|^){_ADV}(?:study|studied|studying|major\s+in|majored\s+in|majoring\s+in)\s+{_OBJ}",
        "studies",
        "phrase",
    ),
    _rule(
        rf"(?:{_I}|{_IM}){_ADV}(?:go\s+to|attend|attending|a\s+student\s+at)\s+(?P<obj>(?:the\s+)?[A-Z][\w ]*?"
        r"(?:University|College|School|Academy|Institute)(?:\s+of\s+[A-Z]\w+)?)",
        "attends",
        "org",
    ),
    _rule(
        rf"{_IM}(?:very\s+|severely\s+|super\s+|deathly\s+)?allergic\s+to\s+{_OBJ}",
        "allergic_to",
        "phrase",
        confidence=0.9,
    ),
    _rule(rf"(?:{_I}|^){_ADV}(?:started|began|took\s+up|picked\s+up)\s+{_OBJ}", "started", "phrase", confidence=0.6),
    _rule(rf"(?:{_I}|^){_ADV}(?:quit|gave\s+up)\s+{_OBJ}", "quit", "phrase", confidence=0.6),
    _rule(
        rf"{_IM}(?:planning|hoping|intending|aiming|thinking\s+about|thinking\s+of)\s+(?:to\s+|on\s+)?{_OBJ}",
        "plans",
        "phrase",
        confidence=0.6,
    ),
    _rule(
        rf"{_IM}{spellings('going to')}\s+(?!(?:the|a|an|my|his|her|their|our|this|that|be\s+there)\b){_OBJ}",
        "plans",
        "phrase",
        confidence=0.6,
    ),
    _rule(rf"{_I}(?:plan|intend|hope)\s+to\s+{_OBJ}", "plans", "phrase", confidence=0.6),
)

_CUT = re.compile(
    r"\s+(?:and\s+(?=(?:I|I'm|it|it's|that|that's|this|they|we|he|she|then|so|also|now|my)\b)|but|because|'cause|cuz|coz|so|"
    r"since|which|who|where|when|while|if|though|although|as\s+well|after|before|"
    r"until|now|anymore|too|lol|haha|as|than|I|with\s+my|with\s+our|for\s+(?:a|the)\s+(?:while|bit|few)|"
    r"right\s+now|these\s+days|lately|nowadays|again|at\s+the\s+moment)\b.*$|\s+-\s.*$",
    re.IGNORECASE,
)
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an|to|some|all)\s+", re.IGNORECASE)
_TRAILING_FILLER = frozenset(
    "a an the my our to of in on at for with about around like roughly almost nearly over just some and or so "
    "very really too more later soon earlier".split()
)
_VAGUE = frozenset(
    "it that this them those these how what when where who everything something anything so seeing hearing "
    "knowing here there one ones him her his their its to going is was are were has have and but or a the i few "
    "lot lots hard more".split()
)
# A plan made only of these says nothing ("I'm gonna keep going", "I'm going to make it happen").
_VAGUE_PLAN = frozenset(
    """keep keeping going go happen make making stay staying try trying out push pushing chase chasing believe
    believing determined work working hard up on it best give never quit dreams goals going themselves""".split()
)
_PLACE_STOP = re.compile(r"\s+(?:in|at|on|for|to|with|by|near|from)\s.*$")
_PRONOUNS = {"my": "{name}'s", "our": "{name}'s", "me": "{name}", "myself": "themselves", "mine": "{name}'s"}
_MAX_WORDS = 8


def _tidy(text: str, kind: ObjectKind, cut_at: int | None, speaker: str) -> str | None:
    """The object phrase cut at its clause's end (or at ``cut_at``, where a date starts), without articles
    or filler, in the third person; None when nothing definite is left."""
    if cut_at is not None and 0 <= cut_at < len(text):
        text = text[:cut_at]
    text = _CUT.sub("", text.strip())
    if kind == "place":
        text = _PLACE_STOP.sub("", text)
    text = _LEADING_ARTICLE.sub("", _LEADING_ARTICLE.sub("", text.strip()))
    words = text.strip(" '\"-").split()
    while words and words[-1].lower() in _TRAILING_FILLER:
        words.pop()
    if not words or words[0].lower() in _VAGUE or len(words) > _MAX_WORDS:
        return None
    if any(w.lower() in SECOND_PERSON for w in words):
        return None
    if kind in ("place", "person", "name") and (not words[0][0].isupper() or words[0] in NOT_NAMES):
        return None
    return " ".join(_PRONOUNS.get(w.lower(), w).format(name=speaker) for w in words)


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
    dated: bool = False  # the sentence's date falls inside the object ("to show my paintings next month")


_OBJECT_TYPE: dict[ObjectKind, EntityType] = {
    "person": "person",
    "place": "place",
    "org": "organization",
    "name": "other",
    "phrase": "other",
    "number": "other",
}


def find_facts(sentence: str, speaker: str, date: DateMention | None = None) -> list[Found]:
    """The facts ``sentence`` states about ``speaker``; ``date`` (the sentence's date) is cut out of objects."""
    found: list[Found] = []
    taken: set[str] = set()
    present = set(_TOKEN.findall(sentence.lower()))
    for rule in _RULES:
        if present.isdisjoint(_CUES[rule.predicate]):
            continue
        match = rule.pattern.search(sentence)
        if match is None:
            continue
        groups = match.groupdict()
        cut_at = date.span[0] - match.start("obj") if date is not None else None
        obj = _tidy(match.group("obj"), rule.kind, cut_at, speaker)
        predicate = rule.predicate.format(
            rel=RELATIONS.get(groups.get("rel") or "", ""),
            what="_".join((groups.get("what") or "").lower().split()),
        )
        if obj is None or predicate in taken or not _definite(predicate, obj):
            continue
        taken.add(predicate)
        if predicate == "plans" and obj[0].isupper():  # "I'm going to Tokyo"
            obj = f"go to {obj}"
        entity = rule.kind in ("person", "place", "name") or (rule.kind == "org" and obj[0].isupper())
        found.append(
            Found(
                predicate,
                obj,
                _OBJECT_TYPE[rule.kind],
                entity,
                _single_valued(rule, predicate),
                rule.ended,
                rule.confidence,
                alias=predicate if groups.get("rel") else None,
                dated=cut_at is not None and 0 <= cut_at < len(match.group("obj")),
            )
        )
    return found


def _single_valued(rule: _Rule, predicate: str) -> bool:
    """From the built-in predicate list, else the rule's own mark; never for a fact that ended."""
    known = predicates.single_valued(predicate)
    return (rule.single_valued if known is None else known) and not rule.ended


def _definite(predicate: str, obj: str) -> bool:
    """Whether the object says something: a person's name is one or two words, a plan more than "keep going"."""
    if predicate == "name":
        return " " not in obj
    if predicate == "plans":
        return any(w.lower() not in _VAGUE_PLAN and w.lower() not in STOPWORDS for w in obj.split())
    return True


def fact_dates(found: Found, event: DateMention | None, said_at: datetime) -> tuple[datetime | None, datetime | None]:
    """(valid_from, valid_until). An ended fact ends on the day the text gives, else when it was said (a
    coarser date such as "this month" contains that moment). A date starts a fact only when the fact is a
    change that happens on a day ("moved to Lisbon last month"): "I went out yesterday with my friend Sam"
    does not date the friendship, and a plan's date is the plan's, not the fact's."""
    if found.ended:
        if event is not None and (event.granularity == "day" or not event.start <= said_at < event.end):
            return None, event.start
        return None, said_at
    if event is None or found.predicate not in _CHANGES:
        return None, None
    return event.start, None

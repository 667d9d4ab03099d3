"""One turn read by the offline rules: its memorable sentences, the facts they state and the names in them.

The steps, in order: drop any injected context block, put the text in one spelling, split it into
sentences, strip interjections, keep the sentences that state something about the speaker or a named
person, write dates as absolute dates, then put the sentence in the third person. Facts are read from the
sentence as spoken (first person), where the patterns are simplest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from engramdb.providers.extraction import (
    EntityCandidate,
    EntityType,
    FactCandidate,
    MemoryCandidate,
    MemoryType,
    Turn,
    strip_injected,
)
from engramdb.providers.extraction.dates import DateMention, find_dates, most_specific
from engramdb.providers.extraction.offline_entities import find_names, guess_type
from engramdb.providers.extraction.offline_patterns import IDENTITY, Found, fact_dates, find_facts
from engramdb.providers.extraction.offline_refs import REFERRING, is_adverb, refers_back, resolve_lead
from engramdb.providers.extraction.offline_text import (
    CONTINUES,
    FIRST_PERSON,
    Judged,
    Rewriter,
    clean,
    content_words,
    is_past,
    judge,
    lead_in,
    normalize,
    split_sentences,
    words_of,
)
from engramdb.providers.extraction.offline_words import STOPWORDS, spellings

_TASK = re.compile(
    rf"\b(?:{spellings('going to')}|plan(?:ning|s)?\s+(?:to|on)|{spellings('want to')}|need\s+to|"
    rf"{spellings('have to')}|hope\s+to|hoping\s+to|intend(?:ing)?\s+to|thinking\s+(?:about|of)|"
    r"looking\s+forward\s+to|can'?t\s+wait\s+to|about\s+to|aim(?:ing)?\s+to|would\s+like\s+to|I'd\s+like\s+to|"
    r"I'd\s+love\s+to|I'll|we'll|(?:I|we)\s+will|soon|upcoming)\b",
    re.IGNORECASE,
)
_PREFERENCE = re.compile(
    r"\b(?:I|we)\s+(?:\w+\s+)?(?:love|like|enjoy|adore|prefer|hate|dislike|can'?t\s+stand)\b|"
    r"\b(?:I'm|I\s+am|we're)\s+(?:\w+\s+)?(?:into|passionate\s+about|obsessed\s+with|a\s+(?:big\s+|huge\s+)?fan\s+of)"
    rf"\b|\b(?:{spellings('favorite')}|go-to|top\s+pick)\b",
    re.IGNORECASE,
)
_PROCEDURAL = re.compile(
    r"\b(?:how\s+to|the\s+(?:trick|key|secret)\s+is|always|usually|whenever|every\s+time|steps?|make\s+sure|"
    r"routine|habit|tend\s+to|first,?\s.{0,40}\bthen)\b",
    re.IGNORECASE,
)
WEIGHTY = re.compile(
    r"\b(?:name|born|married|divorced|engaged|pregnant|wife|husband|son|daughter|kids?|children|mother|father|"
    r"mom|dad|sister|brother|family|live|lives|moved|job|work|career|diagnosed|sick|illness|hospital|surgery|"
    r"allerg\w*|health|died|passed\s+away|graduated|degree|school|college|university|adopt\w*|retir\w*|"
    r"birthday|bday|anniversary|plan|planning|goal|dream)\b",
    re.IGNORECASE,
)
_BASE_IMPORTANCE: dict[MemoryType, float] = {
    "fact": 0.6,
    "preference": 0.55,
    "task": 0.6,
    "procedural": 0.55,
    "episodic": 0.45,
}
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]+")
_TRAILING = re.compile(r"(?:[\s,;:-]+(?:lol|haha\w*|hehe|xd))*[\s!.?,;:-]*$", re.IGNORECASE)
# What follows a date expression that is the subject of its clause, and what may come before it.
_DATE_SUBJECT = re.compile(r"'s been|'s(?= )|(?= (?:was|is|has|had|were|will|would|felt|seemed|went) )")
_CLAUSE_START = re.compile(r"(?:^|[,;:-]\s*|\b(?:and|but|so)\s+)$", re.IGNORECASE)
_YOU_SAID = re.compile(
    r"^you(?:'ve|\s+have)?\s+(?:mentioned|said|told\s+me|shared|noted)\s+(?:that\s+|before\s+that\s+)?(?P<rest>.+)$",
    re.IGNORECASE,
)
_YOU_TO_I = {"you": "I", "your": "my", "you're": "I'm", "you've": "I've", "you'll": "I'll", "you'd": "I'd",
             "yours": "mine", "yourself": "myself", "are": "am", "were": "was"}  # fmt: skip


@dataclass
class Reading:
    """What the rules found in one turn."""

    memories: list[MemoryCandidate] = field(default_factory=list)
    facts: list[FactCandidate] = field(default_factory=list)
    entities: list[EntityCandidate] = field(default_factory=list)


@dataclass(frozen=True)
class Voice:
    """Who a sentence is about: ``subject`` names them in facts, ``display`` in memories."""

    subject: str
    display: str
    is_name: bool


# A person's name: words of letters joined by spaces, apostrophes, hyphens or periods ("Mary-Jane O'Neil",
# "Dr. Ng", "李明"), the first letter a capital where the script has capitals.
_PERSON_NAME = re.compile(r"[^\W\d_]+(?:(?:\. ?|[ '\u2019-])[^\W\d_]+)*\.?")


def is_display_name(name: str) -> bool:
    """Whether ``name`` reads as a person's name rather than an identifier.

    A speaker without a display name reaches the extractor under their external id ("U-4711", "frank",
    "user_42@acme"); written into a memory it would expose the id and read as a misspelt name. So a name
    with a digit or a symbol, or one in lower case where the script has capitals, is taken for an id."""
    return len(name) <= 80 and _PERSON_NAME.fullmatch(name) is not None and not name[0].islower()


def voice_of(turn: Turn) -> Voice:
    """Who speaks: their name as written, or "the user" (the role) when the turn has no display name."""
    if turn.name and is_display_name(turn.name):
        return Voice(turn.name, turn.name, True)
    return Voice(turn.role, f"the {turn.role}", False)


@dataclass(frozen=True)
class _Speech:
    """What every sentence of one turn shares: the turn, who speaks, the names known, how to rewrite."""

    turn: Turn
    voice: Voice
    names: frozenset[str]
    rewriter: Rewriter


def read_turn(turn: Turn, *, names: frozenset[str], user: Voice | None = None, listener: str | None = None) -> Reading:
    """Memories, facts and entities stated in ``turn``; ``listener`` is who "you" is, when known. An
    assistant's turn yields only what it says the user said ("You mentioned you love hiking"), attributed
    to ``user``."""
    text = normalize(strip_injected(turn.content))
    reading = Reading()
    if turn.role in ("assistant", "system", "tool") and not turn.name:
        if user is not None:
            speech = _Speech(turn, user, names, Rewriter(user.display, proper=user.is_name))
            for sentence in split_sentences(text):
                said = _YOU_SAID.match(clean(sentence, names))
                if said:
                    _read_sentence(_you_to_i(said.group("rest")), speech, reading)
        return reading
    voice = voice_of(turn)
    rewriter = Rewriter.for_turn(voice.display, {w.lower() for w in words_of(text)}, listener, proper=voice.is_name)
    speech = _Speech(turn, voice, names, rewriter)
    previous: Judged | None = None
    before: str | None = None
    for sentence in split_sentences(text):
        cleaned = clean(sentence, names)
        previous = _read_sentence(cleaned, speech, reading, previous, before)
        before = cleaned
    return reading


def _you_to_i(text: str) -> str:
    return re.sub(r"\b[\w']+\b", lambda m: _YOU_TO_I.get(m.group(0).lower(), m.group(0)), text)


def _read_sentence(
    sentence: str, speech: _Speech, reading: Reading, previous: Judged | None = None, before: str | None = None
) -> Judged | None:
    """Adds what ``sentence`` states to ``reading``; returns it when it became a memory. ``previous``: the
    sentence before it, when that one became a memory; ``before``: the sentence before it, in any case."""
    if not sentence or sentence.endswith("?"):
        return None
    turn, voice = speech.turn, speech.voice
    mentions = find_dates(sentence, turn.occurred_at)
    event = most_specific(mentions)
    first_person = not FIRST_PERSON.isdisjoint(w.lower() for w in words_of(sentence))
    found = find_facts(sentence, voice.display, event) if first_person else []
    _add_facts(found, turn, voice, event, reading)
    judged = judge(
        sentence,
        voice.display,
        speech.names,
        listener=speech.rewriter.listener,
        continues=previous is not None,
        stated=bool(found),
    )
    if judged is None:
        return None
    memory = _memory(judged, mentions, event, found, speech, reading)
    leaning = refers_back(memory.content)
    if previous is not None and reading.memories and (leaning or judged.words[0].lower() in CONTINUES):
        memory = _joined(reading.memories.pop(), memory)
    elif leaning and not refers_back(resolve_lead(memory.content)):
        memory = replace(memory, content=resolve_lead(memory.content))
    elif leaning:
        lead = lead_in(before) if before else None
        if lead is None:
            return None  # "It was awesome": nothing in the turn says what "it" is
        text = _absolute_dates(lead.text, find_dates(lead.text, turn.occurred_at))
        lead_text = _tidy_end(speech.rewriter.rewrite(replace(lead, text=text)))
        memory = replace(memory, content=_follow(lead_text, memory.content))
    reading.memories.append(memory)
    return judged


def _memory(
    judged: Judged,
    mentions: list[DateMention],
    event: DateMention | None,
    found: list[Found],
    speech: _Speech,
    reading: Reading,
) -> MemoryCandidate:
    content = _tidy_end(speech.rewriter.rewrite(replace(judged, text=_absolute_dates(judged.text, mentions))))
    identity = any(f.predicate in IDENTITY for f in found)
    memory_type = classify(judged, event, speech.turn.occurred_at, identity=identity)
    persons = frozenset(f.object for f in found if f.object_type == "person") | speech.names
    return MemoryCandidate(
        content=content,
        memory_type=memory_type,
        message_ids=(speech.turn.id,),
        speaker=speech.voice.subject,
        importance=_importance(memory_type, judged, bool(found), event is not None),
        entities=_entities(judged.text, speech.voice, persons, reading),
        occurred_at=event.start if event else None,
    )


def _follow(first: str, then: str) -> str:
    """Two statements as one: "A." and "It was B." → "A; it was B."; a name keeps its capital ("A; Maria …")."""
    opening = then.split(" ", 1)[0]
    if opening.lower() in STOPWORDS or opening.lower() in REFERRING:
        then = then[0].lower() + then[1:]
    return f"{first.rstrip('.')}; {then}"


def _joined(last: MemoryCandidate, memory: MemoryCandidate) -> MemoryCandidate:
    """ "It's special to me" means nothing alone: it continues the sentence before it."""
    return replace(
        last,
        content=_follow(last.content, memory.content),
        importance=max(last.importance, memory.importance),
        entities=tuple(dict.fromkeys(last.entities + memory.entities)),
        occurred_at=last.occurred_at or memory.occurred_at,
    )


def _absolute_dates(text: str, mentions: list[DateMention]) -> str:
    """Each date expression in its absolute form. One that is the subject of its clause ("Yesterday was
    awesome", "and last week's been busy") keeps its words and gets the date in parentheses: "On 7 May
    2023 was awesome" is not English."""
    for mention in reversed(mentions):
        start, end = mention.span
        subject = _DATE_SUBJECT.match(text, end)
        if subject and _CLAUSE_START.search(text[:start]):
            verb = {"'s been": " has been", "'s": " is"}.get(subject.group(0), subject.group(0))
            label = mention.label.removeprefix("the ")
            text = f"{text[:start]}{text[start:end]} ({label}){verb}{text[subject.end() :]}"
        else:
            text = text[:start] + mention.phrase + text[end:]
    return text


def _tidy_end(text: str) -> str:
    text = _TRAILING.sub("", _EMOJI.sub("", text)).strip()
    return f"{text}." if text else text


def classify(judged: Judged, event: DateMention | None, said_at: datetime, *, identity: bool = False) -> MemoryType:
    """The memory's type: a plan, a past event, a preference, a how-to, else a fact. ``identity``: the
    sentence states who the speaker is (job, home, family), which makes it a fact even if it says "love"."""
    text = judged.text
    future = event is not None and event.start.date() > said_at.date() and not event.since
    if future or _TASK.search(text):
        return "task"
    past_date = event is not None and event.start.date() < said_at.date() and not event.since
    if past_date or _past_verb(judged):
        return "episodic"
    if identity:
        return "fact"
    if _PREFERENCE.search(text):
        return "preference"
    if _PROCEDURAL.search(text):
        return "procedural"
    return "fact"


def _past_verb(judged: Judged) -> bool:
    """Whether the speaker's main verb is in the past ("I went", "Lost my job")."""
    words = [w.lower() for w in judged.words]
    if judged.kind == "subjectless":
        return is_past(next((w for w in words if not is_adverb(w)), ""))
    for i, word in enumerate(words):
        if word in ("i", "we"):
            verb = next((w for w in words[i + 1 :] if not is_adverb(w)), "")
            return is_past(verb) and verb != "used"
    return False


def _importance(memory_type: MemoryType, judged: Judged, has_fact: bool, has_date: bool) -> float:
    """0..1: identity, relations, health and plans weigh more than passing events and feelings."""
    score = _BASE_IMPORTANCE[memory_type]
    if WEIGHTY.search(judged.text):
        score += 0.15
    if has_fact:
        score += 0.1
    if has_date:
        score += 0.05
    if len(content_words(list(judged.words))) >= 6:
        score += 0.05
    return round(min(max(score, 0.1), 0.95), 2)


def _entities(sentence: str, voice: Voice, persons: frozenset[str], reading: Reading) -> tuple[str, ...]:
    """Names in the sentence (the speaker first); adds each to the turn's entities with a type guess."""
    words = sentence.split()
    found: list[str] = [voice.display] if voice.is_name else []
    if voice.is_name:
        reading.entities.append(EntityCandidate(voice.display, "person"))
    for name, at in find_names(sentence, persons):
        kind: EntityType = guess_type(name, words, at, sentence, persons)
        reading.entities.append(EntityCandidate(name, kind))
        found.append(name)
    return tuple(dict.fromkeys(found))


def _add_facts(found: list[Found], turn: Turn, voice: Voice, event: DateMention | None, reading: Reading) -> None:
    for fact in found:
        valid_from, valid_until = fact_dates(fact, event, turn.occurred_at)
        obj = f"{fact.object} {event.phrase}" if fact.predicate == "plans" and fact.dated and event else fact.object
        reading.facts.append(
            FactCandidate(
                subject=voice.subject,
                predicate=fact.predicate,
                object=obj,
                message_ids=(turn.id,),
                speaker=voice.subject,
                object_is_entity=fact.object_is_entity,
                subject_type="person",
                object_type=fact.object_type,
                confidence=fact.confidence,
                single_valued=fact.single_valued,
                valid_from=valid_from,
                valid_until=valid_until,
            )
        )
        if fact.object_is_entity:
            aliases = (f"{voice.display}'s {fact.alias}",) if fact.alias else ()
            reading.entities.append(EntityCandidate(fact.object, fact.object_type, aliases))
        if voice.is_name:
            reading.entities.append(EntityCandidate(voice.display, "person"))

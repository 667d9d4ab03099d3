"""Sentences of a chat turn, which of them are worth remembering, and their first-person → third-person form.

A memory must make sense on its own months later, read by an agent that does not know who said it:
"I went to a support group yesterday" becomes "Caroline went to a support group on 7 May 2023". The
rules are deliberately shallow (word lists and regular expressions, no tagger) so the extractor stays
dependency-free and fast; where they guess, they guess towards leaving a sentence out, since a missing
memory costs less than a wrong one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from engramdb.providers.extraction.offline_refs import is_adverb, is_advice, refers_back
from engramdb.providers.extraction.offline_words import (
    FAMILY_WORDS,
    FIRST_PERSON_FORMS,
    IMPERATIVES,
    IRREGULAR_THIRD,
    NEGATIVE_THIRD,
    NOT_NAMES,
    SECOND_PERSON,
    STOPWORDS,
    SUBJECTLESS_BASE,
    UNCHANGED_VERBS,
)

_TYPOGRAPHY = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u00a0": " "}
)
_FIRST_PERSON_FORMS = re.compile(
    r"(?<![\w'])(" + "|".join(re.escape(w) for w in FIRST_PERSON_FORMS) + r")(?![\w'])", re.IGNORECASE
)
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\s*\n+\s*|\s+-{1,2}\s+(?=I\b)")
_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|etc|e\.g|i\.e)\.$")
_LEAD = re.compile(
    r"^(?:(?:oh|ooh|wow|whoa|woah|yeah|yea|yes|yep|yup|no|nope|nah|well|hey|hi|hello|haha\w*|hehe|lol|omg|ok"
    r"|okay|cool|sure|totally|definitely|absolutely|aw+|awesome|great|nice|thanks|thank you|thx|man|dude|ah+"
    r"|um+|uh+|hmm+|gosh|geez|ugh|alright|right|true|indeed|agreed|exactly|of course|for sure|congrats"
    r"|congratulations|sounds good|same here|me too|same|good|wonderful|amazing|sweet|yay|I see|I mean|you know)"
    r"\s*[,!.:;-]+\s*"
    r"|(?:so|and|but|also|plus|anyway|btw|by the way|oh|honestly|actually|well|yeah|wow|hey|hi|hello|ah)\s+)+",
    re.IGNORECASE,
)
_CATCHING_UP = re.compile(
    r"^(?:it's\s+been\s+\w+(?:\s+\w+)?\s+)?since\s+(?:we|our|I)\s+(?:last\s+)?(?:chat|talk|spoke|talked|chatted|"
    r"caught\s+up|saw\s+each\s+other|met)\w*\s*[,-]*\s*",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")
_QUESTION_START = re.compile(
    r"^(?:what|who|whom|whose|why|how|do|does|did|are|is|was|were|can|could|would|should|have|has|any|anything|"
    r"ever|got\s+any|you)(?=\s)",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(
    r"\b(?:since\s+(?:we|I)\s+(?:last|spoke|talked|chatted)|been\s+(?:a\s+while|ages|forever)\s+since|long\s+time\s+no|"
    r"catch(?:ing)?\s+up|good\s+to\s+(?:see|hear)|talk\s+(?:to\s+you\s+)?(?:soon|later)|nice\s+to\s+(?:see|hear|meet)|"
    r"take\s+care|ttyl|see\s+you|bye|no\s+problem|no\s+worries)\b|^(?:here's|here\s+is|here\s+are|(?:I\s+)?bet|"
    r"I\s+guess|I\s+know\s+(?:what|right|how)|I\s+agree|I\s+hear\s+you)\b",
    re.IGNORECASE,
)
_SHOWING = re.compile(
    r"^(?:check\s+out|look\s+at|take\s+a\s+look\s+at|here's|here\s+(?:is|are))\s+(this|that|these|those|(?=my\b))\s*",
    re.IGNORECASE,
)
_PERSONAL = re.compile(r"\b(?:I|I'm|I've|my|me|we|our|you|your)\b", re.IGNORECASE)
_COPULA_LATER = re.compile(
    r"\b(?:is|was|has|have|are|were|isn't|wasn't|hasn't|doesn't|makes|made|helps|helped|means|gives|keeps|(?:must|can|could|would|will|should)\s+be)"
    r"\b|'s\b|\b(?:let|lets|[a-z]+[^s\W]s)\s+(?:me|us|a|an|the|such)\b"
)
Kind = Literal["first", "subjectless", "third"]
FIRST_SINGULAR = frozenset("i i'm i've i'll i'd me my mine myself".split())
FIRST_PLURAL = frozenset("we we're we've we'll we'd us our ours ourselves".split())
FIRST_PERSON = FIRST_SINGULAR | FIRST_PLURAL
CONTINUES = frozenset("it it's that that's this they they're which he he's she she's those these".split())
_REFLEXIVE = frozenset(("myself", "ourselves"))  # alone, they make a general remark ("time for ourselves")
_INTENDING = frozenset("going trying hoping planning wanting aiming gonna tryna".split())  # "Going to …" has no subject
_GREETINGS = frozenset("hey hi hello sure thanks yeah yes wow oh ok okay congrats aw aww".split())
_SECOND = frozenset("you your yours yourself you're you've you'll you'd".split())
_NOT_VERB = frozenset("and or but so too all guys both for to with in on at the a an as from about".split())
_TAKES_OBJECT = frozenset(
    """for with to at about of from by on in like than into without tell told thank thanks see saw love miss
    help helped let give gave show showed ask asked call meet met get got make made send sent remind reminds
    keep wish bring introduce invite invited join inspire inspired support supported teach taught""".split()
)


def _is_subject(tokens: list[re.Match[str]], i: int) -> bool:
    """Whether "you" at ``i`` is a subject ("if you need", "you are") rather than an object ("for you")."""
    if i + 1 >= len(tokens):
        return False
    after = tokens[i + 1].group(0).lower()
    before = tokens[i - 1].group(0).lower() if i > 0 else ""
    between = tokens[i].string[tokens[i].end() : tokens[i + 1].start()].strip()
    takes_object = before in _TAKES_OBJECT or before.endswith("ing")
    return not between and after not in _NOT_VERB and not takes_object


def normalize(text: str) -> str:
    """One form for quotes and apostrophes, and for "I" and its contractions ("i" → "I", "im" → "I'm").

    Nothing else is respelled: a memory keeps the user's words ("favourite", "gonna"), and the rules accept
    their variants (``offline_words.SPELLING_VARIANTS``). "I" is safe to rewrite: it never reaches a memory,
    which names the speaker instead."""
    text = text.translate(_TYPOGRAPHY)
    return _FIRST_PERSON_FORMS.sub(lambda m: FIRST_PERSON_FORMS.get(m.group(0).lower(), m.group(0)), text)


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``: ends of sentences, line breaks, and "- I …" asides."""
    parts: list[str] = []
    for piece in _SPLIT.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if parts and _ABBREVIATION.search(parts[-1]):
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    return parts


def clean(sentence: str, names: frozenset[str]) -> str:
    """The sentence without leading interjections ("Wow, yeah,") or a name it is addressed to."""
    previous = None
    while previous != sentence:
        previous = sentence
        sentence = _CATCHING_UP.sub("", _LEAD.sub("", sentence)).strip()
        words = sentence.split(maxsplit=2)
        if len(words) >= 2 and words[0][-1] in ",!." and _addressed(words[0][:-1], " ".join(words[1:]), names):
            sentence = " ".join(words[1:])
        elif len(words) == 3 and words[0].lower() in _GREETINGS and words[1][-1] in ",!." and words[1][:-1] in names:
            sentence = words[2]
    bare = sentence.rstrip("!.")
    for name in names:
        if bare.endswith(f", {name}"):
            sentence = bare[: -len(name) - 2] + sentence[len(bare) :]
            break
    return sentence.strip(" ,;:-")


def _addressed(word: str, rest: str, names: frozenset[str]) -> bool:
    """Whether ``word`` (followed by a comma) names the listener: a known name, or a capitalised word before
    a clause about "I" or "you" ("Maria, since we last talked …")."""
    if word in names:
        return True
    return word.istitle() and word.isalpha() and word not in NOT_NAMES and _PERSONAL.search(rest) is not None


def words_of(sentence: str) -> list[str]:
    return _WORD.findall(sentence)


def content_words(words: list[str]) -> list[str]:
    """Words that carry information (not function words, pronouns or small talk)."""
    return [w for w in words if len(w) > 2 and w.lower() not in STOPWORDS]


@dataclass(frozen=True)
class Judged:
    """A sentence kept for memory: how it refers to its subject, and its words."""

    text: str
    kind: Kind
    words: tuple[str, ...]


def judge(
    sentence: str,
    speaker: str,
    names: frozenset[str],
    *,
    listener: str | None = None,
    continues: bool = False,
    stated: bool = False,
) -> Judged | None:
    """The sentence if it is a statement worth remembering about the speaker or a named person.

    ``listener``: who "you" is, when known; a sentence about the speaker may then mention them ("I appreciate
    your support"), while one only about the listener ("You're doing great") stays out. ``continues``: the
    sentence before it was kept, so a follow-up ("It's special to me") may be too. ``stated``: a fact was
    read from it, which shows it is informative however short ("I love hiking")."""
    if sentence.endswith("?") or _QUESTION_START.match(sentence) and not sentence.endswith("!"):
        return None
    words = words_of(sentence)
    lowered = [w.lower() for w in words]
    if len(words) < (3 if stated else 4) or lowered[0] in ("let's", "lets", "please", "thanks"):
        return None
    if _SMALL_TALK.search(sentence):
        return None
    first = any(w in FIRST_PERSON and w not in _REFLEXIVE for w in lowered)
    if any(w in SECOND_PERSON for w in lowered) and (listener is None or not first):
        return None
    content = len(content_words(words))
    if content < (0 if stated or continues and first else 1 if continues else 2):
        return None
    kind = _kind(words, lowered, first, content, continues, names, speaker)
    return None if kind is None else Judged(sentence, kind, tuple(words))


def lead_in(sentence: str) -> Judged | None:
    """The sentence as context for the one after it ("My dogs are Lab mixes." before "They love the
    beach."): any plain statement that does not itself lean on an earlier one or on the listener."""
    shown = _SHOWING.match(sentence)
    if shown:  # "Check out this photo of my dogs." → "I shared a photo of my dogs."
        article = {"this": "a", "that": "a", "these": "some", "those": "some"}.get(shown.group(1).lower(), "")
        sentence = f"I shared {article}{' ' if article else ''}{sentence[shown.end() :]}".rstrip("!")
    words = words_of(sentence)
    lowered = [w.lower() for w in words]
    if len(words) < 3 or sentence.endswith("?") or _QUESTION_START.match(sentence) or _SMALL_TALK.search(sentence):
        return None
    if any(w in SECOND_PERSON for w in lowered) or lowered[0] in IMPERATIVES or is_advice(lowered):
        return None
    if refers_back(sentence) or not content_words(words):
        return None
    return Judged(sentence, "subjectless" if _subjectless(lowered) else "first", tuple(words))


def _kind(
    words: list[str],
    lowered: list[str],
    first: bool,
    content: int,
    continues: bool,
    names: frozenset[str],
    speaker: str,
) -> Kind | None:
    """How a sentence refers to whom it is about, or None when it is about no one in particular."""
    if lowered[0] in IMPERATIVES or is_advice(lowered):
        return None
    if first:
        return "subjectless" if _subjectless(lowered) else "first"
    if content >= 3 and _subjectless(lowered) and not _gerund_subject(lowered):
        return "subjectless"
    if continues and lowered[0] in CONTINUES and content >= 2:
        return "third"
    others = [w for w in words[1:] if w[0].isupper() and w not in NOT_NAMES and w not in names]
    if words[0] in names and words[0] != speaker or others and content >= 3 and words[0] not in NOT_NAMES:
        return "third"
    return None


def _gerund_subject(lowered: list[str]) -> bool:
    """A general remark led by a gerund ("Watching movies is a fun way to relax", "Really having a space
    for dancers matters"), about no one in particular."""
    at = next((i for i, w in enumerate(lowered) if not is_adverb(w)), 0)
    return lowered[at].endswith("ing") and _COPULA_LATER.search(" ".join(lowered[at + 1 :])) is not None


def _subjectless(lowered: list[str]) -> bool:
    """Whether the sentence starts with the speaker's verb, its subject left out ("Lost my job today")."""
    at = next((i for i, w in enumerate(lowered) if not is_adverb(w)), 0)
    first, following = lowered[at], lowered[at + 1] if at + 1 < len(lowered) else ""
    if first in FIRST_PERSON:
        return False
    gerund = first.endswith("ing") and first not in ("thing", "nothing", "something", "everything", "anything")
    gerund = gerund or first in ("gonna", "tryna")  # "Gonna visit my mom" is "going to visit …"
    been = first == "been" and following not in ("a", "an")  # "Been a long road" has lost an "it"
    return is_past(first) or first in SUBJECTLESS_BASE or been or gerund


def is_past(word: str) -> bool:
    """Whether ``word`` is a past form (or a modal), which reads the same after "I" and after a name."""
    word = word.lower()
    return (
        word in UNCHANGED_VERBS
        and word not in ("can", "will", "may", "must", "shall")
        or (len(word) > 4 and word.endswith("ed") and not word.endswith("eed") and word.isalpha())
    )


def third_singular(verb: str) -> str:
    """The verb after "I" as it reads after a name: love → loves, am → is, don't → doesn't."""
    low = verb.lower()
    if low in IRREGULAR_THIRD:
        return IRREGULAR_THIRD[low]
    if low in NEGATIVE_THIRD:
        return NEGATIVE_THIRD[low]
    if low in UNCHANGED_VERBS or is_past(low) or low.endswith(("n't", "ing")) or not low.isalpha():
        return verb
    if low.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if len(low) > 2 and low.endswith("y") and low[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


class Rewriter:
    """Puts one speaker's sentence in the third person.

    Every "I" / "my" / "me" names the speaker ("Caroline", "Caroline's"): repetitive, but never ambiguous
    and no guess at gender; on LoCoMo it also matched reference facts better than "they" / "their". "We"
    becomes "<name> and family" when the turn talks about family, else "<name> and others", and "they" when
    the group was named before in the sentence. ``proper``: ``name`` is a person's name, written as given
    (never capitalised or lowered); otherwise it is a description such as "the user", capitalised when it
    opens the statement.
    """

    def __init__(self, name: str, *, listener: str | None = None, family: bool = False, proper: bool = True) -> None:
        self.name = name
        self.listener = listener
        self.group = f"{name} and family" if family else f"{name} and others"
        self._as_written = tuple(n for n in (name if proper else None, listener) if n)

    @staticmethod
    def for_turn(name: str, turn_words: set[str], listener: str | None = None, *, proper: bool = True) -> Rewriter:
        return Rewriter(name, listener=listener, family=bool(turn_words & FAMILY_WORDS), proper=proper)

    def capitalized(self, text: str) -> str:
        """``text`` with a capital first letter, unless it opens with a name, whose case is the person's."""
        if not text or text.startswith(self._as_written):
            return text
        return text[0].upper() + text[1:]

    def rewrite(self, judged: Judged) -> str:
        text = judged.text
        if judged.kind == "subjectless":
            text = self._add_subject(text)
        tokens = list(_WORD.finditer(text))
        named = self.name in text
        out: list[str] = []
        last = 0
        replaced: dict[int, str] = {}
        for i, token in enumerate(tokens):
            word = replaced.pop(i, None) or self._replace(tokens, i, named, replaced)
            if word != token.group(0) and not named:
                named = self.name in word
            out.append(text[last : token.start()])
            out.append(word)
            last = token.end()
        out.append(text[last:])
        return self.capitalized("".join(out))

    def _add_subject(self, text: str) -> str:
        """The subject a sentence left out: "Lost my job" → "<name> lost my job", "Finishing the piece" →
        "<name> is finishing the piece", but "Really made me think" → "It really made me think" (there the
        speaker is the object)."""
        words = text.split(" ")
        at = next((i for i, w in enumerate(words) if not is_adverb(w)), 0)
        verb, low = words[at], words[at].lower()
        before, after = " ".join(words[:at]).lower(), " ".join(words[at + 1 :])
        lead = f"{before} " if before else ""
        if low.endswith("ing") and low not in ("thing", "nothing", "something") or low in ("gonna", "tryna"):
            # "Starting a store is scary": the gerund is the subject
            if _COPULA_LATER.search(after) and low not in _INTENDING:
                return text
            return f"{self.name} is {lead}{low} {after}"
        if low == "been":
            return f"{self.name} has {lead}been {after}"
        if after.lower().startswith(("me ", "us ")):
            return f"It {lead}{low} {after}"
        return f"{self.name} {lead}{third_singular(verb).lower()} {after}".rstrip()

    def _replace(self, tokens: list[re.Match[str]], i: int, named: bool, replaced: dict[int, str]) -> str:
        word = tokens[i].group(0)
        low = word.lower()
        if low in FIRST_SINGULAR:
            new = self._singular(low, tokens, i, replaced)
        elif low in FIRST_PLURAL:
            new = self._plural(low, named)
        elif low in _SECOND and self.listener:
            new = self._second(low, tokens, i, replaced, self.listener)
        else:
            return word
        return self.capitalized(new) if tokens[i].start() == 0 else new

    def _singular(self, low: str, tokens: list[re.Match[str]], i: int, replaced: dict[int, str]) -> str:
        verb_at = next((j for j in range(i + 1, len(tokens)) if not is_adverb(tokens[j].group(0))), None)
        verb = tokens[verb_at].group(0) if verb_at is not None else ""
        if low == "i" and verb_at is not None:
            replaced[verb_at] = third_singular(verb)
        if low == "i'd":
            return f"{self.name} had" if verb == "been" or is_past(verb) else f"{self.name} would"
        return {"i": self.name, "i'm": f"{self.name} is", "i've": f"{self.name} has", "i'll": f"{self.name} will",
                "me": self.name, "my": f"{self.name}'s", "mine": f"{self.name}'s",
                "myself": "themselves"}[low]  # fmt: skip

    @staticmethod
    def _second(low: str, tokens: list[re.Match[str]], i: int, replaced: dict[int, str], listener: str) -> str:
        """The listener for "you", and the verb after a subject "you" in the third person ("you are" → "Dave is")."""
        if low == "you" and _is_subject(tokens, i):
            verb_at = next((j for j in range(i + 1, len(tokens)) if not is_adverb(tokens[j].group(0))), None)
            if verb_at is not None:
                verb = tokens[verb_at].group(0)
                replaced[verb_at] = "was" if verb == "were" else third_singular(verb)
        return {"you": listener, "your": f"{listener}'s", "yours": f"{listener}'s", "yourself": "themselves",
                "you're": f"{listener} is", "you've": f"{listener} has", "you'll": f"{listener} will",
                "you'd": f"{listener} would"}[low]  # fmt: skip

    def _plural(self, low: str, named: bool) -> str:
        if named:
            return {"we": "they", "we're": "they're", "we've": "they've", "we'll": "they'll", "we'd": "they'd",
                    "us": "them", "our": "their", "ours": "theirs", "ourselves": "themselves"}[low]  # fmt: skip
        group = self.group
        return {"we": group, "we're": f"{group} are", "we've": f"{group} have", "we'll": f"{group} will",
                "we'd": f"{group} would", "us": group, "our": f"{self.name}'s", "ours": f"{self.name}'s",
                "ourselves": "themselves"}[low]  # fmt: skip

"""Whether a statement can stand on its own: pronouns that point outside it, and advice to the listener.

"It was awesome" or "These little guys bring joy to Nate's life" mean nothing months later to a reader who
never saw the sentence before them. The extractor joins such a sentence to the one it follows, or drops it.
An "it" that points at nothing ("It's great to see you", "It's been a busy week") is fine on its own.
"""

from __future__ import annotations

import re

from engramdb.providers.extraction.offline_words import ADVERBS, IMPERATIVES

# Words that, leading a statement, point at something said before it.
REFERRING = frozenset(
    """it it's its this that that's these those they they're they've they'll them their he he's she she's
    his her him which such""".split()
)
_WORD = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*")
_LY_VERBS = frozenset("apply reply rely supply imply multiply comply fly ally bully rally tally".split())
# After "it", what makes it a placeholder for a clause that follows ("It's great *to* see …").
_LINKING = frozenset("'s is was been be feels felt seems seemed sounds looks looked means meant makes made".split())
_CLAUSE = frozenset("to that how when what why where if whether for since".split())
_BUT_NAMED = re.compile(r"^[^;]{0,40}\bbut\s+[A-Z]")
_SPAN = frozenset("week weekend month year day days while time night morning evening summer winter".split())
# Verbs that open advice to the listener ("Slowly introduce Scout to Toby"), beyond ``IMPERATIVES``.
_ADVICE = frozenset(
    """introduce start use add avoid practice practise focus trust reach ask talk listen write watch pay stick
    choose pick treat allow spend surround learn break mix stay be do don't give remember keep try""".split()
)


_DEMONSTRATIVE = re.compile(r"^(?:This|That|These|Those)\s+(?P<next>[A-Za-z'-]+)")
_WHY = re.compile(r"^(?:That's|That\s+is|This\s+is|It's|It\s+is)\s+(?:also\s+|just\s+)?why\s+(?=\w)", re.IGNORECASE)
# Nouns that say no more than the demonstrative before them: "these little guys", "those moments".
_VAGUE = frozenset("one ones guys things stuff moments times days experiences kind sort type bit lot".split())
_VERBISH = frozenset(
    """is was are were be been being has have had will would can could must might may should do does did
    isn't wasn't aren't weren't doesn't didn't won't can't really just always also definitely sure one
    made make gave give got get brought bring took take helped help reminded remind showed show""".split()
)
_TIME = frozenset("morning afternoon evening night week weekend month year summer winter spring fall autumn".split())


def resolve_lead(text: str) -> str:
    """``text`` without a lead that only points back, where what follows says enough: "That's why Calvin
    loves his job" → "Calvin loves his job", "These figurines remind Melanie of family" → "The figurines
    remind …"."""
    why = _WHY.match(text)
    if why:
        rest = text[why.end() :]
        return rest[0].upper() + rest[1:]
    demonstrative = _DEMONSTRATIVE.match(text)
    if demonstrative:
        following = demonstrative.group("next").lower()
        verbish = (
            following in _VERBISH
            or following in _TIME
            or following.endswith("ed")
            or text[:4] in ("This", "That")
            and (following.endswith("s") and not following.endswith("ss"))
        )
        if not verbish and not _vague_noun(text[demonstrative.start("next") :]):
            return "The " + text[demonstrative.start("next") :]
    return text


def _vague_noun(rest: str) -> bool:
    """Whether the noun phrase at the start of ``rest`` ends in a word like "guys" or "moments"."""
    words = [w.lower() for w in _WORD.findall(rest)[:3]]
    return any(w in _VAGUE for w in words)


def is_adverb(word: str) -> bool:
    """Whether ``word`` sits between a subject and its verb ("I *really* love"): listed, or an -ly word."""
    word = word.lower()
    return word in ADVERBS or len(word) > 4 and word.endswith("ly") and word not in _LY_VERBS


def refers_back(text: str) -> bool:
    """Whether ``text`` opens with a pronoun or demonstrative that points at an earlier sentence."""
    words = [w.lower() for w in _WORD.findall(text)]
    if not words or words[0] not in REFERRING or len(words) > 1 and words[1] in _TIME:
        return False  # "This week has been busy" points at the calendar
    if words[0] in ("it", "it's") and _BUT_NAMED.search(text):
        return False  # "It's been tough, but Jon is sure it will pay off": the news is after "but"
    return not _placeholder_it(words)


def _placeholder_it(words: list[str]) -> bool:
    """ "It's great to see …", "It feels good having …", "It's been a long week": an "it" standing for
    a clause or a stretch of time rather than for a thing mentioned before."""
    if words[0] == "it's":
        words = ["it", "'s", *words[1:]]
    if words[0] != "it" or len(words) < 3:
        return False
    rest = [w for w in words[1:9] if not is_adverb(w)]
    if not rest or rest[0] not in _LINKING and rest[0] not in ("has", "had", "would", "will", "can", "must"):
        return False
    following = rest[1:6]
    if not following or following[0] in ("like", "a", "an") and not any(w in _SPAN for w in following[:4]):
        return False
    # "It feels great *knowing* …", "It's fun *to* …"; not "It's relaxing and refreshing"
    gerund = len(following) > 1 and following[1].endswith("ing") and not following[0].endswith("ing")
    return gerund or any(w in _CLAUSE for w in following) or any(w in _SPAN for w in following[:4])


def is_advice(lowered: list[str]) -> bool:
    """Whether the sentence tells the listener what to do: it opens with a base-form verb, perhaps after
    an adverb ("Slowly introduce Scout to Toby", "Just be patient")."""
    at = next((i for i, w in enumerate(lowered) if not is_adverb(w)), len(lowered))
    if at == len(lowered):
        return False
    return lowered[at] in _ADVICE or at > 0 and lowered[at] in IMPERATIVES

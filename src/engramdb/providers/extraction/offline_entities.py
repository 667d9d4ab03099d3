"""Names in a sentence and a guess at what each names (person, place, organization, other).

Without a tagger the only signals are capital letters and the words around a name: "in Lisbon" is a
place, "work at Acme" an organization, "with Sam" a person. A word at the start of a sentence is
capitalised anyway, so it counts as a name only when it is known to be one (a speaker, a place on the
built-in list, a word with an organization suffix).
"""

from __future__ import annotations

import re

from engramdb.providers.extraction import EntityType
from engramdb.providers.extraction.offline_words import NOT_NAMES

PLACES = frozenset(
    """Afghanistan Argentina Australia Austria Belgium Brazil Canada Chile China Colombia Croatia Cuba Denmark
    Egypt England Ethiopia Finland France Germany Ghana Greece Iceland India Indonesia Iran Iraq Ireland Israel
    Italy Jamaica Japan Kenya Korea Lebanon Mexico Morocco Nepal Netherlands Nigeria Norway Pakistan Peru
    Philippines Poland Portugal Russia Scotland Singapore Spain Sweden Switzerland Taiwan Thailand Turkey
    Ukraine Vietnam Wales Europe Asia Africa America Australia Antarctica UK USA US Hawaii Alaska California
    Texas Florida Oregon Washington Nevada Arizona Colorado Utah Montana Idaho Wyoming Georgia Virginia
    Carolina Ohio Michigan Illinois Indiana Wisconsin Minnesota Iowa Missouri Kansas Nebraska Dakota Oklahoma
    Arkansas Louisiana Mississippi Alabama Tennessee Kentucky Pennsylvania Maryland Delaware Jersey
    Connecticut Massachusetts Vermont Maine Hampshire London Paris Rome Berlin Madrid Lisbon Porto Barcelona
    Amsterdam Vienna Prague Dublin Edinburgh Athens Istanbul Moscow Tokyo Kyoto Osaka Seoul Beijing Shanghai
    Bangkok Delhi Mumbai Sydney Melbourne Toronto Vancouver Montreal Chicago Boston Seattle Portland Denver
    Austin Dallas Houston Miami Atlanta Orlando Phoenix Vegas Nashville Philadelphia Brooklyn Manhattan NYC
    LA SF Dubai Cairo Nairobi Lagos Rio Lima Havana Munich Milan Venice Florence Naples Zurich Geneva
    Stockholm Oslo Copenhagen Helsinki Warsaw Budapest Brussels Barcelona Seville Valencia Marseille Lyon
    Nice Bali Hollywood Yosemite Yellowstone""".split()
) | frozenset(
    "New York|Los Angeles|San Francisco|San Diego|New Zealand|South Africa|Hong Kong|United States|United Kingdom|"
    "Las Vegas|New Orleans|Puerto Rico|Costa Rica|Mexico City|Buenos Aires|Sao Paulo|Cape Town|North Carolina|"
    "South Carolina|New Jersey|New Mexico|West Virginia|Rhode Island|Grand Canyon".split("|")
)
_ORG_SUFFIXES = frozenset(
    "Inc Corp Corporation LLC Ltd University College School Academy Institute Company Co Club Foundation Bank "
    "Hospital Group Center Centre Church Association Society Agency Studio Studios Labs Department League "
    "Clinic Shelter Charity Network Organization Organisation".split()
)
_PLACE_SUFFIXES = frozenset(
    "City Park Beach Lake River Mountain Mountains Island Islands Street Avenue Museum County State Valley Bay "
    "Falls Canyon Forest Village Town Coast Trail Peak Gardens Garden Square Bridge Cafe Café".split()
)
_PLACE_BEFORE = frozenset("in to from visited visiting visit near around across towards toward into".split())
_MOTION = frozenset(
    "went go going gone moved move moving trip travelled traveled flew drove back headed heading fly visit "
    "road came come coming returned".split()
)
_PERSON_BEFORE = frozenset("with met named called meet meeting asked told and by".split())
_PERSON_AFTER = frozenset("said says told asked and".split())
_JOB = re.compile(r"\b(?:work|worked|working|job|intern|interned|hired|employed|employer)\b", re.IGNORECASE)
_NAME_TOKEN = re.compile(r"[A-Z][\w&'.-]*")
_CONNECTORS = frozenset(("of", "de", "da", "del", "van", "von", "&"))


def find_names(sentence: str, known: frozenset[str]) -> list[tuple[str, int]]:
    """Capitalised names in ``sentence`` with their position (in words); ``known`` names count at its start."""
    words = sentence.split()
    names: list[tuple[str, int]] = []
    i = 0
    while i < len(words):
        run = _run_at(words, i)
        if not run:
            i += 1
            continue
        name, length = run
        if _is_name(name, at_start=i == 0, known=known):
            names.append((name, i))
        i += length
    return names


def _run_at(words: list[str], i: int) -> tuple[str, int] | None:
    """The run of capitalised words starting at ``i`` (connectors like "of" allowed inside), and its length."""
    parts: list[str] = []
    j = i
    while j < len(words):
        word = words[j].strip("\"'()[]")
        bare = word.rstrip(",.!?;:")
        if bare.endswith("'s"):
            bare = bare[:-2]
        if _NAME_TOKEN.fullmatch(bare) and bare not in NOT_NAMES:
            parts.append(bare)
        elif parts and bare in _CONNECTORS and j + 1 < len(words) and words[j + 1][:1].isupper():
            parts.append(bare)
        else:
            break
        j += 1
        if bare != word:  # punctuation ends the name
            break
    while parts and parts[-1] in _CONNECTORS:
        parts.pop()
    return (" ".join(parts), max(j - i, 1)) if parts else None


def _is_name(name: str, *, at_start: bool, known: frozenset[str]) -> bool:
    if len(name) < 2 or name.isupper() and name not in PLACES:
        return False
    if not at_start or name in known or name in PLACES:
        return True
    last = name.split()[-1]
    return last in _ORG_SUFFIXES or last in _PLACE_SUFFIXES


def guess_type(name: str, words: list[str], at: int, sentence: str, persons: frozenset[str]) -> EntityType:
    """What the name at word ``at`` of the sentence most likely is, from the name and its neighbours."""
    if name in persons:
        return "person"
    parts = name.split()
    if parts[-1] in _ORG_SUFFIXES:
        return "organization"
    if parts[-1] in _PLACE_SUFFIXES or name in PLACES:
        return "place"
    before = words[at - 1].lower().strip(",") if at > 0 else ""
    before2 = words[at - 2].lower() if at > 1 else ""
    after = words[at + len(parts)].lower().strip(",.!") if at + len(parts) < len(words) else ""
    if before in ("at", "for") and _JOB.search(sentence):
        return "organization"
    if before in ("in", "visited", "visiting", "near") or before in _PLACE_BEFORE and before2 in _MOTION:
        return "place"
    if before == "from" and before2 in ("am", "i'm", "come", "came", "moved", "back"):
        return "place"
    if before in _PERSON_BEFORE or after in _PERSON_AFTER and len(parts) <= 2:
        return "person"
    return "other"

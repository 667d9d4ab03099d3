"""Categories for the offline extractor's memories, from a lexicon of topic words.

The rule: a memory is filed under a built-in category when its text holds one of that category's topic
words (``LEXICON``, below); the categories with the most distinct matching words win, at most
``MAX_CATEGORIES``, ties going to the word that comes first in the text. A word matches as written, or
without a possessive ``'s`` or a plural ``s``/``es``/``ies`` ("allergies" → "allergy"); verb forms are
listed where they mean the topic ("cooked", "hiking"), so that a suffix rule never turns an unrelated word
into a topic word. Two phrases are read beyond single words: an occupation after "is a", "as a" and the
like ("is a nurse", "works as an engineer": work), and an amount of money ("$40", "€1,200": finance).
When no topic word matches, the memory's type decides: a preference is filed under ``preferences``, a
plan under ``goals``, a past event under ``events``; a plain fact gets none. Only categories the caller
offers are used, so an organization's own categories (which the lexicon does not know) are left to the
embedding match that files every memory the extractor leaves uncategorised.

The word lists are general vocabulary for each built-in description in
``engramdb.services.memory.categories.BUILTIN``, chosen to be unambiguous in ordinary chat: words with a
common second meaning are left out ("sugar" is food but not in "blood sugar", "fish" is a pet or a dish,
"course" is mostly "of course", "bill" is also a name; "watch", "show" and "play" are too general), and a
word sits in one list unless it clearly belongs to two ("salary": work and finance; "graduation": education
and events). The lexicon is read once, at import, into one dictionary from word to categories, so
categorising a memory is one dictionary look-up per word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from engramdb.providers.extraction import MemoryType
from engramdb.providers.extraction.offline_words import OCCUPATIONS, PETS

MAX_CATEGORIES = 2  # as many as the embedding match gives (``categories.MAX_PER_MEMORY``)

LEXICON: dict[str, str] = {
    "personal": """name nickname age birthday born birthplace hometown nationality citizen citizenship
        identity gender pronouns transgender trans nonbinary religion religious live lives lived resident
        apartment neighborhood neighbourhood native""",
    "family": """family mother mom mum mommy mama father dad daddy papa parent son daughter child children kid
        baby babies brother sister sibling wife husband spouse grandma grandpa grandmother grandfather
        grandparent grandchild grandchildren grandson granddaughter aunt uncle cousin niece nephew in-law
        mother-in-law father-in-law stepmom stepdad stepmother stepfather stepson stepdaughter twin pregnant
        pregnancy relative hubby""",
    "relationships": """friend friendship boyfriend girlfriend partner dating married marriage
        wedding divorce divorced engaged engagement fiance fiancé fiancee fiancée breakup relationship crush
        roommate neighbor neighbour bestie buddy pal ex anniversary""",
    "work": """work works worked job career employer employee boss manager coworker co-worker colleague office
        company startup business client customer promotion promoted hired fired layoff resigned
        resignation shift interview internship intern profession professional occupation workplace deadline
        retire retired retirement salary overtime commute commuting""",
    "education": """school college university uni class courses degree diploma majored majoring studies study
        studying studied student professor lecture exam homework thesis dissertation phd master's bachelor's
        graduate graduated graduation semester tuition scholarship learn learning lesson tutor
        tutoring curriculum kindergarten campus""",
    "health": """health healthy sick illness disease diagnosed diagnosis doctor hospital clinic surgery
        medication medicine meds pill prescription therapy therapist counseling counselling mental anxiety
        depression depressed allergy allergic asthma diabetes diabetic insulin blood cholesterol cancer
        injury injured pain ache headache migraine fever flu covid cough symptom recovery recovering rehab
        physiotherapy physio checkup dentist dental vaccine vaccinated fitness exercise exercising workout gym
        yoga jogging sleep insomnia sober sobriety smoking cardio pilates""",
    "food": """food eat eats ate eating meal breakfast lunch dinner brunch snack cook cooks cooked cooking bake
        bakes baked baking recipe restaurant cafe café cuisine vegetarian vegan pescatarian gluten dairy lactose
        keto diet dessert cake pizza pasta sushi burger taco salad soup bread cheese chocolate coffee tea wine
        beer cocktail drink juice fruit vegetable veggie meat chicken beef pork seafood spicy taste flavor
        flavour kitchen grocery groceries chef bbq barbecue grill peanut rice noodle ramen curry steak egg""",
    "travel": """travel traveled travelled traveling travelling trip vacation flight flew airport plane
        passport visa hotel hostel abroad overseas tour tourist sightseeing cruise backpacking itinerary
        visited visiting""",
    "hobbies": """hobby paint painting painted drawing sketch sketching pottery knit knitting crochet sew
        sewing garden gardening hike hiking hiked camping fishing climbing surfing skiing snowboarding skating
        swimming cycling biking photography guitar piano violin drums instrument singing choir dancing dance
        chess puzzle game gaming soccer football basketball tennis golf baseball volleyball hockey sport craft
        woodworking collecting journaling birdwatching marathon""",
    "entertainment": """movie film cinema theater theatre series tv television netflix episode watched book
        novel author album song band concert festival music podcast anime manga comic documentary musical
        opera""",
    "pets": "pet vet veterinarian leash kennel " + " ".join(sorted(PETS - {"fish"})),
    "finance": """money budget budgeting spending savings saving salary income paycheck bills rent mortgage loan
        debt credit bank invest investing investment stock crypto bitcoin tax expensive afford price cost
        purchase purchased dollar euro""",
    "goals": "goal dream ambition aspire aspiration resolution achieve",
    "events": """party celebration celebrate celebrated graduation funeral ceremony conference accident reunion
        event christmas thanksgiving easter halloween""",
    "preferences": "favorite favourite fave fav prefer prefers preferred preference",
    "technology": """software computer laptop phone smartphone iphone android app programming code coding coder
        python javascript linux macbook server database internet wifi website tech technology device gadget
        tablet ipad keyboard printer router robot github email digital console playstation xbox""",
    "community": """volunteer volunteering volunteered charity donate donated donation fundraiser fundraising
        nonprofit non-profit activism activist protest advocacy advocate community church mosque
        temple synagogue congregation shelter mentor mentoring lgbtq rally petition outreach""",
}
BY_TYPE: dict[MemoryType, str] = {"preference": "preferences", "task": "goals", "episodic": "events"}

_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
_ROLE = re.compile(
    r"\b(?:is|am|was|'m|as|became|become|becoming)\s+(?:a|an)\s+(?:[\w-]+\s+)?(?P<job>[a-z]+)\b", re.IGNORECASE
)
_MONEY = re.compile(r"[$€£¥]\s?\d|\b\d[\d,.]*\s?(?:dollars|euros|bucks|usd|eur|gbp)\b", re.IGNORECASE)


def _index(lexicon: dict[str, str]) -> dict[str, tuple[str, ...]]:
    index: dict[str, list[str]] = {}
    for category, words in lexicon.items():
        for word in words.split():
            index.setdefault(word, []).append(category)
    return {word: tuple(categories) for word, categories in index.items()}


_INDEX = _index(LEXICON)


def _lookup(word: str) -> tuple[str, ...]:
    """The categories of ``word`` (lower case): as written, else without a possessive or plural ending."""
    for form in (word, word.removesuffix("'s"), word.removesuffix("s"), word.removesuffix("es")):
        if form in _INDEX:
            return _INDEX[form]
    if word.endswith("ies"):
        return _INDEX.get(word[:-3] + "y", ())
    return ()


def _hits(text: str) -> Iterable[str]:
    """Each (category, word) hit in text order, as the category; a word counts once per category."""
    seen: set[tuple[str, str]] = set()
    events: list[tuple[int, str, str]] = []
    for match in _WORD.finditer(text):
        word = match.group(0).lower()
        events += [(match.start(), category, word) for category in _lookup(word)]
    for match in _ROLE.finditer(text):
        if match.group("job").lower() in OCCUPATIONS:
            events.append((match.start("job"), "work", "@occupation"))
    events += [(match.start(), "finance", "@money") for match in _MONEY.finditer(text)]
    for _, category, word in sorted(events):
        if (category, word) not in seen:
            seen.add((category, word))
            yield category


def categorize(text: str, memory_type: MemoryType, offered: Sequence[str]) -> tuple[str, ...]:
    """The categories of a memory (see the module's rule), among ``offered``; () if none applies."""
    allowed = set(offered)
    counts: dict[str, int] = {}
    for category in _hits(text):
        if category in allowed:
            counts[category] = counts.get(category, 0) + 1  # dicts keep first-hit order for the ties
    if counts:
        ranked = sorted(counts, key=lambda category: -counts[category])
        return tuple(ranked[:MAX_CATEGORIES])
    fallback = BY_TYPE.get(memory_type)
    return (fallback,) if fallback in allowed else ()

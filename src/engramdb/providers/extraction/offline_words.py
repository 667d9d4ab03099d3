"""Word lists shared by the offline extractor's rules.

Kept apart from the rules so that tuning a list never means reading regular expressions, and the rules
modules stay short. Every list is small and hand-picked: the extractor runs without a tagger or model, so
these lists are its only knowledge of English.
"""

from __future__ import annotations

import re

# After "I" (and before its verb) these are skipped when the verb is put in the third person.
ADVERBS = frozenset(
    "really also just still always usually often never sometimes actually recently finally totally absolutely "
    "even already truly definitely mostly only ever currently now personally honestly seriously literally "
    "certainly rarely occasionally generally def kinda sorta barely hardly probably especially simply "
    "genuinely constantly regularly so all both officially slowly mainly secretly".split()
)

# Verb forms after "I" that stay as they are in the third person: past tenses and modals.
UNCHANGED_VERBS = frozenset(
    "was were did had would could should will can might must shall may went got saw made took came gave "
    "found felt thought told said knew left met bought brought ran began wrote kept lost won sang swam drove "
    "flew ate drank slept spent built taught caught fought sent heard held stood understood sat wore chose "
    "broke spoke woke forgot became paid put let set cut hit hurt quit read grew drew threw rode fell led "
    "shot stuck hung dug meant began sold struck bet upset ain't cannot can't couldn't wouldn't shouldn't "
    "won't didn't wasn't weren't mustn't needn't might've could've would've should've gotten used "
    "didnt cant couldnt wouldnt shouldnt wasnt werent".split()
)
# After a name, "I wanna" must change its words, so it is written out: that is the person, not a respelling.
IRREGULAR_THIRD = {
    "am": "is", "are": "is", "be": "is", "have": "has", "do": "does", "go": "goes", "wanna": "wants to",
    "gotta": "has to",
}  # fmt: skip
NEGATIVE_THIRD = {"don't": "doesn't", "haven't": "hasn't", "aren't": "isn't", "dont": "doesnt", "havent": "hasnt"}

# Chat spellings of "I" and its contractions, put in standard form before anything else. Only these: the
# third-person rewrite replaces every one of them (with the speaker's name), so no spelling of the user's
# is lost. Every other word keeps the user's spelling ("favourite", "gonna", "dont"): the rules accept
# those variants instead (``SPELLING_VARIANTS`` and the lists below), and memories quote the user.
FIRST_PERSON_FORMS = {
    "im": "I'm",
    "ive": "I've",
    "i": "I",
    "i'm": "I'm",
    "i've": "I've",
    "i'll": "I'll",
    "i'd": "I'd",
}
# Chat and regional spellings the rules read as the standard word (each rule that cares lists both).
SPELLING_VARIANTS = {
    "gonna": "going to",
    "wanna": "want to",
    "gotta": "have to",
    "tryna": "trying to",
    "'cause": "because",
    "cuz": "because",
    "coz": "because",
    "kinda": "kind of",
    "sorta": "sort of",
    "dont": "don't",
    "didnt": "didn't",
    "cant": "can't",
    "fave": "favorite",
    "fav": "favorite",
    "favourite": "favorite",
}


def spellings(standard: str) -> str:
    """A regular expression for ``standard`` ("going to") or any of its variants ("gonna")."""
    forms = [standard, *(variant for variant, meant in SPELLING_VARIANTS.items() if meant == standard)]
    return "(?:" + "|".join(r"\s+".join(map(re.escape, form.split())) for form in forms) + ")"


# First words that make a sentence an instruction to the listener rather than a statement.
IMPERATIVES = frozenset(
    "check look take let let's lets go come see make keep stay tell try give get remember hang imagine guess "
    "don't dont never enjoy have be believe push wish send show follow hit join grab count bring call find "
    "consider think stop please sounds sound thank".split()
)

# A sentence may start without its subject ("Lost my job yesterday"): first words taken as the speaker's
# verb. Past forms and these base forms; any other base form reads as an instruction.
SUBJECTLESS_BASE = frozenset(
    "love enjoy hate hope need want miss feel plan wish adore prefer appreciate believe can't cannot cant wanna "
    "gotta".split()
)

# Not content: function words, pronouns, fillers and the vocabulary of small talk. A sentence needs a
# few words outside this list to be worth remembering.
STOPWORDS = frozenset(
    """a an the and or but so if then than that this these those there here it its it's is are was were be
    been being am do does did doing done have has had having i i'm i've i'll i'd me my mine myself we we're
    we've we'll us our ours ourselves you your you're yours he she him her his they them their theirs to of
    in on at by for with from about as into onto over up down out off just really very so too also still
    even all any some much many more most lot lots such what which who whom whose when where why how not no
    yes yeah yep wow oh hey hi hello thanks thank okay ok cool great awesome amazing nice good bad wonderful
    fantastic incredible super pretty totally definitely absolutely sure glad happy excited thrilled proud
    sorry love loved lovely fun funny can can't could would should will won't might must may get got gonna
    going go goes went thing things stuff something anything everything nothing way kind sort well like
    feel feels felt make makes made lol haha omg one ones time times now today day new always never ever
    again though because since while until let's let know think thought guess mean means seem seems seemed
    see saw look looks looked want wanted need needed keep kept take took come came say said tell told
    true right wait cannot don't didn't isn't wasn't aren't doesn't haven't hasn't can't couldn't wouldn't
    shouldn't hope hoping means meant sounds sound inspiring inspired special beautiful stunning gorgeous
    exciting interesting important hard tough best better worth thanks appreciate appreciated support
    reminds remind reminded check keen definitely mean huge big little bit other another same each every
    both either neither own only after before during yet already almost quite rather enough who's what's
    that's there's here's it'll that'll these're ya y'all u ur cause tho dude man dont didnt cant isnt wasnt
    arent doesnt havent hasnt couldnt wouldnt shouldnt wanna gotta tryna kinda sorta cuz coz""".split()
)

# A sentence addressed to the listener is about them, and rarely a fact the speaker stated.
SECOND_PERSON = frozenset("you your you're you've you'll you'd yours yourself yourselves u ur ya y'all".split())

FAMILY_WORDS = frozenset(
    "kids kid children family husband wife son daughter sons daughters hubby partner parents mom dad".split()
)

# Relation words after "my" that name a person: "my sister Anna", normalised to one predicate each.
RELATIONS = {
    "sister": "sister", "brother": "brother", "sis": "sister", "bro": "brother", "mom": "mother",
    "mum": "mother", "mother": "mother", "dad": "father", "father": "father", "husband": "husband",
    "hubby": "husband", "wife": "wife", "son": "son", "daughter": "daughter", "friend": "friend",
    "buddy": "friend", "pal": "friend", "bestie": "friend", "boss": "boss", "manager": "boss",
    "coworker": "coworker", "co-worker": "coworker", "colleague": "colleague", "partner": "partner",
    "boyfriend": "boyfriend", "girlfriend": "girlfriend", "fiance": "fiance", "fiancé": "fiance",
    "fiancee": "fiance", "fiancée": "fiance", "cousin": "cousin", "aunt": "aunt", "uncle": "uncle",
    "grandma": "grandmother", "grandmother": "grandmother", "grandpa": "grandfather",
    "grandfather": "grandfather", "niece": "niece", "nephew": "nephew", "roommate": "roommate",
    "neighbor": "neighbor", "neighbour": "neighbor", "teacher": "teacher", "mentor": "mentor",
    "therapist": "therapist", "doctor": "doctor", "coach": "coach", "child": "child", "kid": "child",
    "stepmom": "stepmother", "stepdad": "stepfather", "classmate": "classmate", "ex": "ex",
}  # fmt: skip
PETS = frozenset("dog cat puppy kitten pup doggo bunny rabbit hamster parrot bird horse turtle fish snake".split())

OCCUPATIONS = frozenset(
    """teacher nurse doctor engineer lawyer chef cook artist painter student developer programmer designer
    writer author banker counselor counsellor therapist manager consultant photographer musician scientist
    professor accountant pilot mechanic firefighter officer dancer singer actor actress entrepreneur
    architect pharmacist dentist veterinarian vet journalist editor librarian electrician plumber carpenter
    farmer baker barista bartender waiter waitress cashier clerk analyst researcher coach trainer
    instructor tutor psychologist psychiatrist surgeon paramedic soldier veteran marine sailor driver
    freelancer founder ceo cto intern volunteer activist social worker retiree illustrator animator
    translator realtor agent salesman saleswoman secretary receptionist janitor guard detective
    programmer coder gamer streamer youtuber blogger podcaster composer producer director filmmaker
    poet novelist sculptor potter tailor hairdresser stylist model athlete player swimmer runner""".split()
)

# Capitalised words that are not names.
NOT_NAMES = frozenset(
    """I I'm I've I'll I'd The A An And But Or So If Then This That These Those There Here It It's My Me We
    Our Us You Your He She His Her They Them Their What When Where Why How Who Which Yes No Yeah Yep Wow Oh
    Hey Hi Hello Thanks Thank Ok Okay Cool Great Awesome Amazing Nice Good Lol Haha Omg OMG Sorry Sure
    Well Just Also Still Really Totally Definitely Absolutely Maybe Not Let Let's Monday Tuesday Wednesday
    Thursday Friday Saturday Sunday January February March April May June July August September October
    November December Christmas Easter Halloween Thanksgiving God Mom Dad Mum Grandma Grandpa Today
    Yesterday Tomorrow Tonight Last Next Every Some Any All One Two Three After Before During Since Because
    Plus Anyway Btw Wish Hope Love Glad Happy Can Could Would Should Will Do Does Did Is Are Was Were Have
    Has Had Been Being Congrats Congratulations Aww Aw Ah Ugh Hmm Yup Nope Nah Whoa Woah Dear Mr Mrs Ms Dr
    Mr. Mrs. Ms. Dr. St Sir Madam Gonna Wanna Gotta Thx Bye Goodbye Cheers Hahaha Hehe Yay Woo Woohoo Ooh
    Both Each Much Many More Most Other Another Such Only Even Once Never Always Sometimes Often Agreed
    Exactly Right True Indeed Absolutely Anything Everything Something Nothing Everyone Someone Anyone
    Check Look Take Go Come See Make Keep Stay Tell Try Give Get Remember Imagine Guess Believe Keep Enjoy""".split()
)

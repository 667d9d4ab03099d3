"""The predicates Engram knows out of the box, and how many objects each holds at a time.

``one``: a subject has one object at a time (``lives_in``), so a new object closes the current fact;
``many``: objects accumulate (``likes``). This one list is both the offline extractor's knowledge (its
rules mark a fact single-valued from it) and the built-in half of every organization's predicate catalogue
(``services/graph/predicates.py``), where an organization adds its own predicates or overrides these.
A predicate in neither is many-valued unless a caller or the LLM extractor says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Cardinality = Literal["one", "many"]


@dataclass(frozen=True)
class BuiltinPredicate:
    cardinality: Cardinality
    description: str


BUILTIN: dict[str, BuiltinPredicate] = {
    # One object at a time: a new one closes the old.
    "name": BuiltinPredicate("one", "the name someone goes by"),
    "age": BuiltinPredicate("one", "how old someone is"),
    "lives_in": BuiltinPredicate("one", "the place someone lives now"),
    "born_in": BuiltinPredicate("one", "where someone was born"),
    "works_at": BuiltinPredicate("one", "the employer someone works for"),
    "occupation": BuiltinPredicate("one", "someone's job or profession"),
    "spouse": BuiltinPredicate("one", "the person someone is married to"),
    "married_to": BuiltinPredicate("one", "the person someone is married to"),
    "partner": BuiltinPredicate("one", "the person someone is dating or in a relationship with"),
    # Objects accumulate.
    "from": BuiltinPredicate("many", "where someone comes from or grew up"),
    "likes": BuiltinPredicate("many", "something someone likes or enjoys"),
    "dislikes": BuiltinPredicate("many", "something someone dislikes"),
    "has_pet": BuiltinPredicate("many", "a pet someone has"),
    "studies": BuiltinPredicate("many", "a subject someone studies"),
    "attends": BuiltinPredicate("many", "a school or university someone attends"),
    "allergic_to": BuiltinPredicate("many", "something someone is allergic to"),
    "started": BuiltinPredicate("many", "something someone took up"),
    "quit": BuiltinPredicate("many", "something someone gave up"),
    "plans": BuiltinPredicate("many", "something someone plans or hopes to do"),
}


def single_valued(predicate: str) -> bool | None:
    """Whether the built-in ``predicate`` (snake_case) is single-valued; None when it is not a built-in."""
    known = BUILTIN.get(predicate)
    return None if known is None else known.cardinality == "one"

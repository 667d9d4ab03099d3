"""extract.v1: conversation turns → memories, facts and entities, in one call.

The response model is deliberately lenient: types, scores and dates are plain strings and numbers here
(the JSON schema still lists the allowed values, so a constrained decoder keeps to them), and the
extractor coerces what is out of range. One odd field then costs that field, not the whole extraction
and a repair round-trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field
from pydantic.config import JsonDict

from engramdb.providers.extraction import ENTITY_TYPES, MEMORY_TYPES, Turn, strip_injected

VERSION = "extract.v1"
SCHEMA_NAME = "engram_extraction"


def _none_as_empty(value: Any) -> Any:
    """Models often write ``null`` for an empty list; that is not worth a repair."""
    return [] if value is None else value


Names = Annotated[list[str], BeforeValidator(_none_as_empty)]
TurnIndexes = Annotated[list[int], BeforeValidator(_none_as_empty)]
_ENTITY_TYPE: JsonDict = {"enum": list(ENTITY_TYPES)}
_SCORE: JsonDict = {"minimum": 0, "maximum": 1}


class ExtractedMemory(BaseModel):
    content: str = Field(description="A self-contained statement in the third person, naming the speaker.")
    type: str = Field(default="fact", json_schema_extra={"enum": list(MEMORY_TYPES)})
    importance: float = Field(default=0.5, json_schema_extra=_SCORE)
    entities: Names = Field(default_factory=list, description="Names of the entities the memory is about.")
    categories: Names = Field(default_factory=list, description="Names from the given categories only.")
    source_turns: TurnIndexes = Field(default_factory=list, description="Indexes [i] of the turns it comes from.")
    occurred_on: str | None = Field(default=None, description="ISO date (YYYY-MM-DD) the event happened, if known.")


class ExtractedFact(BaseModel):
    subject: str
    predicate: str = Field(description="snake_case relation, e.g. lives_in, works_at, sister_of.")
    object: str
    object_is_entity: bool = False
    subject_type: str = Field(default="person", json_schema_extra=_ENTITY_TYPE)
    object_type: str = Field(default="other", json_schema_extra=_ENTITY_TYPE)
    confidence: float = Field(default=0.8, json_schema_extra=_SCORE)
    single_valued: bool = Field(default=False, description="The subject has one object for it at a time.")
    valid_from: str | None = Field(default=None, description="ISO date the fact became true, if the text says.")
    valid_until: str | None = Field(default=None, description="ISO date the fact stopped being true, if said.")
    source_turns: TurnIndexes = Field(default_factory=list)


class ExtractedEntity(BaseModel):
    name: str
    type: str = Field(default="other", json_schema_extra=_ENTITY_TYPE)
    aliases: Names = Field(default_factory=list)


class ExtractionResponse(BaseModel):
    memories: Annotated[list[ExtractedMemory], BeforeValidator(_none_as_empty)] = Field(default_factory=list)
    facts: Annotated[list[ExtractedFact], BeforeValidator(_none_as_empty)] = Field(default_factory=list)
    entities: Annotated[list[ExtractedEntity], BeforeValidator(_none_as_empty)] = Field(default_factory=list)


_SYSTEM = f"""\
You extract long-term memory from a conversation, for an assistant that will talk with these people again \
weeks or months from now. Reply with JSON holding three lists: memories, facts and entities.

Rules:
1. Write every memory in the third person, naming the speaker ("Alice moved to Lisbon in May 2024", never \
"I moved…" or "the user moved…"). Each memory must be self-contained: understandable alone, without the \
conversation, with no pronoun or "this"/"that" whose referent is missing.
2. Keep only durable, useful information: facts about people and their lives, preferences, plans, tasks and \
deadlines, decisions, standing instructions, notable events. Skip greetings, thanks, small talk, filler, \
questions without an answer, and the assistant's own offers or pleasantries. When nothing is worth keeping, \
return empty lists.
3. Each turn is shown as "[i] (YYYY-MM-DD) Speaker: text". Resolve relative dates ("yesterday", "next \
Friday", "last year") against the date of the turn they appear in, and write the absolute date into the \
memory text and into occurred_on / valid_from / valid_until as YYYY-MM-DD. Leave a date null when the text \
gives none.
4. List in source_turns the indexes i of the turns each memory or fact comes from.
5. Turns under "Earlier context" are for resolving references only: extract nothing from them.
6. Never extract anything written inside <engram-context> … </engram-context> blocks: that is memory \
already stored, echoed back.
7. Memory type: fact (a stable truth about someone or something), preference (likes, dislikes, wishes), \
task (something to do, with its deadline if any), procedural (how to do something, a standing \
instruction), episodic (something that happened at a time). importance: 0 trivial to 1 essential \
(health, family, commitments, deadlines).
8. Facts are subject–predicate–object triples stated or clearly implied. Use full names for subject and \
object. predicate is snake_case (lives_in, works_at, sister_of, likes). object_is_entity is true when the \
object is a named entity and false for a plain value (a number, a colour, a date). single_valued is true \
when the subject has one object for that predicate at a time (lives_in, works_at, married_to) and false \
otherwise (likes, visited). confidence: 0 to 1.
9. Entities: every person, place, organization, event, object or concept named in the memories and facts; \
type is one of {", ".join(ENTITY_TYPES)}; aliases are other names the conversation uses for it.
"""

_CATEGORIES = """\
10. categories: file each memory under zero or more of these categories, spelled exactly as given, and \
leave the list empty when none fits: {names}."""

_NO_CATEGORIES = "10. Leave categories empty."


def _line(turn: Turn, index: int | None) -> str:
    text = strip_injected(turn.content).replace("\n", "\n    ")  # continuation lines stay inside the turn
    prefix = f"[{index}] " if index is not None else "- "
    return f"{prefix}({turn.occurred_at.date().isoformat()}) {turn.speaker}: {text}"


def build_messages(
    turns: Sequence[Turn], context: Sequence[Turn] = (), categories: Sequence[str] = ()
) -> list[dict[str, str]]:
    """The chat messages asking to extract from ``turns``; ``context`` turns get no index, so cannot be cited.

    Injected ``<engram-context>`` blocks are stripped here as well as forbidden in the prompt: what the model
    never sees it cannot extract.
    """
    rules = _CATEGORIES.format(names=", ".join(categories)) if categories else _NO_CATEGORIES
    parts: list[str] = []
    if context:
        parts.append("Earlier context (for reference only, extract nothing from it):")
        parts.extend(_line(turn, None) for turn in context)
        parts.append("")
    parts.append("Conversation to extract from:")
    parts.extend(_line(turn, i) for i, turn in enumerate(turns))
    return [
        {"role": "system", "content": f"{_SYSTEM}{rules}"},
        {"role": "user", "content": "\n".join(parts)},
    ]

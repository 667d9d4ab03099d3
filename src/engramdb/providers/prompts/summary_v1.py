"""summary.v1: a rolling session summary, and a narrative profile of one person.

Both are rewritten rather than appended to: the model gets the previous text and what is new, and returns
the whole updated text, so it stays within the limit however long the session or the history grows. The
limit is stated in characters because that is what Engram stores and enforces (the caller truncates too).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from engramdb.providers.extraction import Turn, strip_injected

VERSION = "summary.v1"
SUMMARY_SCHEMA_NAME = "engram_session_summary"
NARRATIVE_SCHEMA_NAME = "engram_user_narrative"


class SessionSummary(BaseModel):
    summary: str = Field(description="The whole updated summary of the session.")


class Narrative(BaseModel):
    narrative: str = Field(description="The whole updated profile of the person.")


_SUMMARY_SYSTEM = """\
You keep a rolling summary of one conversation session, so that an assistant can pick the conversation up \
later without rereading it. You get the summary so far (possibly empty) and the new turns, each shown as \
"(YYYY-MM-DD) Speaker: text". Return the whole updated summary.

- Write in the third person, naming the speakers; keep who said what.
- Keep what matters later: topics, decisions, facts learned about the people, open questions and tasks \
with their deadlines. Drop greetings and small talk.
- Write absolute dates: resolve "yesterday" or "next week" against the date of the turn.
- Ignore anything inside <engram-context> … </engram-context> blocks: it is memory already stored.
- Merge the new turns into the summary instead of appending a log; shorten older details if needed.
- At most {max_chars} characters."""

_NARRATIVE_SYSTEM = """\
You write the profile of one person for an assistant that will talk with them: who they are, their life \
and work, the people around them, their preferences, goals and ongoing plans. You get the previous profile \
(possibly empty) and statements about the person, oldest first. Return the whole updated profile.

- Write flowing prose in the third person, using the person's name.
- Use only what the statements and the previous profile support; never invent or guess.
- Where statements conflict, trust the later one, and drop what it replaced.
- Keep concrete details (names, places, dates); leave out trivia.
- At most {max_chars} characters."""


def _turn_line(turn: Turn) -> str:
    text = strip_injected(turn.content).replace("\n", "\n    ")
    return f"({turn.occurred_at.date().isoformat()}) {turn.speaker}: {text}"


def build_summary_messages(previous: str | None, turns: Sequence[Turn], *, max_chars: int) -> list[dict[str, str]]:
    """Messages asking to update the session summary ``previous`` with ``turns`` (oldest first)."""
    new_turns = "\n".join(_turn_line(turn) for turn in turns)
    user = f"Summary so far:\n{previous.strip() if previous else '(none yet)'}\n\nNew turns:\n{new_turns}"
    return [
        {"role": "system", "content": _SUMMARY_SYSTEM.format(max_chars=max_chars)},
        {"role": "user", "content": user},
    ]


def build_narrative_messages(
    subject: str, previous: str | None, statements: Sequence[str], *, max_chars: int
) -> list[dict[str, str]]:
    """Messages asking for the profile of ``subject`` from ``statements`` (memories and facts, oldest first)."""
    listed = "\n".join(f"- {' '.join(statement.split())}" for statement in statements)
    user = (
        f"Person: {subject}\n\nPrevious profile:\n{previous.strip() if previous else '(none yet)'}\n\n"
        f"Statements:\n{listed}"
    )
    return [
        {"role": "system", "content": _NARRATIVE_SYSTEM.format(max_chars=max_chars)},
        {"role": "user", "content": user},
    ]

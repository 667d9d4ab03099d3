"""offload.v1: the representative summary of an offloaded context (what is embedded and shown in search).

The model sees the context's title, type and an excerpt (its start and end, within a budget: a context may
be 16 MiB, far past any window) and writes a short description an agent can match a later question against.
The limit is in characters because that is what Engram stores (the caller truncates too).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

VERSION = "offload.v1"
SCHEMA_NAME = "engram_context_summary"


class ContextSummary(BaseModel):
    summary: str = Field(description="What the context holds, for finding it again.")


_SYSTEM = """\
An agent moved a piece of its working context (a transcript, a scratchpad, tool output or a file) out of \
its window into storage. Write the summary it will be found by later: what the context is, the topics, \
names, decisions, identifiers and open questions it holds. Use only what the excerpt shows; never invent. \
Write plain sentences, no preamble. At most {max_chars} characters."""


def build_messages(title: str | None, content_type: str, excerpt: str, *, max_chars: int) -> list[dict[str, str]]:
    """Messages asking for the summary of a context of ``content_type`` from ``excerpt``."""
    user = f"Title: {title or '(none)'}\nType: {content_type}\n\nExcerpt:\n{excerpt}"
    return [
        {"role": "system", "content": _SYSTEM.format(max_chars=max_chars)},
        {"role": "user", "content": user},
    ]

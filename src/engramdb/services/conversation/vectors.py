"""Message vectors: what is embedded for a message (its sentences, with date and speaker, and the message
after the previous turn), and the one batched call that embeds them. Used when messages are written and
by the backfill that embeds deferred ones."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from engramdb.providers.embedder import Embedder

# Written rows wait for a vector (``defer_embedding``): the wake-up the embedding backfill listens for
# (``storage.notify``: a server-wide key, not an organization's).
PENDING = (uuid.UUID(int=0), "embedding-pending")


def message_embedding_text(name: str | None, content: str, occurred_at: datetime) -> str:
    """What is embedded for a message: its date and speaker give the turn its context.

    Measured on LoCoMo (docs/benchmarks.md): vector-only evidence R@10 is 0.305 for the bare text,
    0.447 with the speaker and 0.480 with the date as well.
    """
    speaker = f"{name}: " if name else ""
    return f"[{occurred_at.day} {occurred_at:%B %Y}] {speaker}{content}"


MAX_SENTENCES = 16  # a longer message's remaining sentences share the last vector
CONTEXT_WORDS = 60  # of the previous turn, in a message's context vector
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")


def sentences(content: str) -> list[str]:
    """The sentences of a message (ends of sentences and line breaks), at most ``MAX_SENTENCES``."""
    parts = [p.strip() for p in _SENTENCE_END.split(content) if p.strip()]
    if len(parts) > MAX_SENTENCES:
        parts[MAX_SENTENCES - 1 :] = [" ".join(parts[MAX_SENTENCES - 1 :])]
    return parts or [content]


@dataclass(frozen=True)
class MessageVectors:
    embedding: list[float]
    part_embeddings: list[list[float]] | None  # each sentence's; None for a message of one sentence
    context_embedding: list[float] | None = None  # the message after the previous turn; None for a first


@dataclass(frozen=True)
class MessageText:
    name: str | None
    content: str
    occurred_at: datetime
    previous: tuple[str | None, str] | None = None  # (name, content) of the session's previous turn


def context_text(message: MessageText) -> str | None:
    """The message with the turn before it, for the message's context vector."""
    if message.previous is None:
        return None
    name, content = message.previous
    # Only the end of a long previous turn: the model reads a bounded number of tokens, and the message
    # itself (which comes after) must never be cut off.
    words = content.split()
    if len(words) > CONTEXT_WORDS:
        content = "… " + " ".join(words[-CONTEXT_WORDS:])
    before = f"{name}: {content}" if name else content
    return message_embedding_text(message.name, f"{before} {message.content}", message.occurred_at)


Span = tuple[int, int, bool]  # a message's sentences (start, end) in the texts, and whether its context follows


def message_texts(messages: Sequence[MessageText], parts: str = "sentences+context") -> tuple[list[str], list[Span]]:
    """The texts :func:`embed_messages` embeds for ``messages``, and where each message's are among them
    (also what ``bench/scale.py`` gives the bare model, to compare ingest with the model on the same work)."""
    texts: list[str] = []
    spans: list[Span] = []
    for m in messages:
        start = len(texts)
        pieces = [m.content] if parts == "turn" else sentences(m.content)
        texts += [message_embedding_text(m.name, piece, m.occurred_at) for piece in pieces]
        sentence_end = len(texts)
        after = context_text(m) if parts == "sentences+context" else None
        if after is not None:
            texts.append(after)
        spans.append((start, sentence_end, after is not None))
    return texts, spans


async def embed_messages(
    embedder: Embedder, messages: Sequence[MessageText], parts: str = "sentences+context"
) -> list[MessageVectors]:
    """Embed each message's parts in one batch: each sentence (with the message's date and speaker, see
    ``message_embedding_text``) and the message in context (after the previous turn). The message's own
    vector is the normalized mean of its sentences'; search scores it by its best part.

    ``parts`` (``ENGRAM_MESSAGE_VECTORS``) trades quality for ingest speed: ``turn`` embeds the message
    whole (one text), ``sentences`` each sentence (the same tokens), ``sentences+context`` also the
    message after the previous turn (about twice the tokens).

    Measured on LoCoMo (docs/benchmarks.md), vector-only evidence R@10: 0.480 for one vector per turn,
    0.564 scoring each turn by its best sentence, 0.606 with the turn in context as one more part (hybrid,
    through the API: 0.713 with sentences, 0.737 with the context as well).
    """
    texts, spans = message_texts(messages, parts)
    vectors = await embedder.embed_batch(texts, kind="passage")
    out = []
    for start, sentence_end, has_context in spans:
        own = vectors[start:sentence_end]
        context = vectors[sentence_end] if has_context else None
        if len(own) == 1:
            out.append(MessageVectors(own[0], None, context))
            continue
        mean = [sum(column) / len(own) for column in zip(*own, strict=True)]
        norm = math.sqrt(sum(x * x for x in mean)) or 1.0
        out.append(MessageVectors([x / norm for x in mean], own, context))
    return out

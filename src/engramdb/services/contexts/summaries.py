"""The representative text of a context: what it is embedded as, what keyword search reads besides its
start, and what search results show.

With an LLM configured (``ENGRAM_LLM_BASE_URL``, extraction not ``off``) the model writes it from an
excerpt (``providers/prompts/offload_v1.py``); without one, or when the model fails, it is extractive: the
text's first sentence, then the sentences whose words recur most in the text (after Luhn: a word's
weight is the number of distinct sentences that use it, stop words and short words left out; a sentence
scores the sum of its distinct words' weights over the square root of their number), shown in the text's
order, up to ``MAX_CONTEXT_SUMMARY_CHARS``. Binary content is described by its title, file name, type and
size. The title and file name lead the text either way, so a context is
also found by what it was called.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass

from engramdb import limits
from engramdb.errors import EngramError
from engramdb.providers.prompts import offload_v1
from engramdb.services.core.runtime import Runtime

_log = logging.getLogger(__name__)

_SENTENCE = re.compile(r"[^\n.!?]+(?:[.!?]+|$)", re.MULTILINE)
_WORD = re.compile(r"[^\W\d_]{3,}")
_STOP = frozenset(
    "the and for are but not you all any can had her was one our out has him his how its may new now old see "
    "two way who did get let put say she too use that with have this will your from they know want been good "
    "much some time very when come here just like long make many more only over such take than them well "
    "were what into also there their would could should about which these those other being after before "
    "where while because then does done yes okay yeah".split()
)
# The extractive summary reads the start of a text only, as keyword search does: past it, a text of source
# took 300 ms a MiB on two busy cores, for a summary of 2,000 characters.
_ANALYSED_CHARS = limits.MAX_CONTEXT_INDEXED_CHARS
_EXCERPT_HEAD, _EXCERPT_TAIL = 12_000, 3_000  # what the LLM sees of a text, in characters


@dataclass(frozen=True)
class Representative:
    text: str
    source: str  # extractive | llm | described


def charset(content_type: str) -> str:
    match = re.search(r";\s*charset\s*=\s*\"?([A-Za-z0-9._-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else "utf-8"


def text_of(data: bytes, content_type: str) -> str | None:
    """The content as text, if it is text (valid in its declared charset, UTF-8 by default, and free of
    NUL characters at its start); else None."""
    try:
        text = data.decode(charset(content_type))
    except (UnicodeDecodeError, LookupError):
        return None
    return None if "\x00" in text[:8192] else text


def _clean(text: str) -> str:
    return " ".join(text.replace("\x00", " ").split())


def extractive(text: str, max_chars: int) -> str:
    """The first sentence, then the best-scored ones, shown in the text's order, within ``max_chars``."""
    sample = text[:_ANALYSED_CHARS]
    seen: set[str] = set()
    sentences: list[tuple[int, str]] = []
    for match in _SENTENCE.finditer(sample):
        sentence = _clean(match.group())
        if len(sentence) >= 12 and sentence not in seen:  # a line repeated (a banner, a prompt) counts once
            seen.add(sentence)
            sentences.append((match.start(), sentence))
    if not sentences:
        return _clean(sample)[:max_chars]
    # A word's weight: how many distinct sentences use it.
    weights = Counter(w for _, s in sentences for w in {w for w in _WORD.findall(s.lower()) if w not in _STOP})

    def score(sentence: str) -> float:
        words = {w for w in _WORD.findall(sentence.lower()) if w not in _STOP}
        return sum(weights[w] for w in words) / math.sqrt(len(words)) if words else 0.0

    first, *rest = sentences
    chosen = [first]
    used = min(len(first[1]), max_chars)
    for at, sentence in sorted(rest, key=lambda item: -score(item[1])):
        if used + len(sentence) + 1 > max_chars:
            continue
        chosen.append((at, sentence))
        used += len(sentence) + 1
        if used >= max_chars - 12:
            break
    return " ".join(s for _, s in sorted(chosen))[:max_chars]


def _heading(title: str | None, filename: str | None) -> str:
    return " · ".join(part for part in (title, filename) if part)


def described(title: str | None, filename: str | None, content_type: str, size: int) -> str:
    name = _heading(title, filename) or "Untitled"
    return f"{name} ({content_type}, {size:,} bytes)"


def _excerpt(text: str) -> str:
    if len(text) <= _EXCERPT_HEAD + _EXCERPT_TAIL:
        return text
    return text[:_EXCERPT_HEAD] + "\n[…]\n" + text[-_EXCERPT_TAIL:]


async def represent(
    rt: Runtime, text: str | None, *, title: str | None, filename: str | None, content_type: str, size: int
) -> Representative:
    """The context's representative text (see the module's docstring)."""
    room = limits.MAX_CONTEXT_SUMMARY_CHARS
    if text is None or not text.strip():
        return Representative(described(title, filename, content_type, size)[:room], "described")
    heading = _heading(title, filename)
    if heading:
        heading += "\n"
    room -= len(heading)
    client = rt.intelligence.client
    if client is not None:
        messages = offload_v1.build_messages(title, content_type, _excerpt(text), max_chars=room)
        try:
            answer, _ = await client.complete_json(
                messages, offload_v1.ContextSummary, schema_name=offload_v1.SCHEMA_NAME
            )
            summary = _clean(answer.summary)[:room]
            if summary:
                return Representative(heading + summary, "llm")
        except EngramError as exc:  # the LLM failed after its retries: the extractive summary still works
            _log.warning("summarizing an offloaded context with the LLM failed (%s); using an extractive one", exc)
    picked = await asyncio.to_thread(extractive, text, room)  # pure Python: off the event loop
    return Representative(heading + picked, "extractive")


def indexed_text(representative: str, text: str | None) -> str:
    """What keyword search indexes: the representative text and the start of a text context."""
    start = text[: limits.MAX_CONTEXT_INDEXED_CHARS].replace("\x00", " ") if text else ""
    return representative + "\n" + start

"""How a chunk is embedded and how a search hit cites it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from engramdb.providers.documents.parse import code_language

CONTEXT_PART_CHARS = 60
CONTEXT_CHARS = 160
_SEP = " › "


class Citable(Protocol):
    @property
    def heading_path(self) -> Sequence[str]: ...
    @property
    def start_line(self) -> int: ...
    @property
    def end_line(self) -> int: ...
    @property
    def page(self) -> int | None: ...


def _short(part: str) -> str:
    part = " ".join(part.split())
    return part if len(part) <= CONTEXT_PART_CHARS else part[: CONTEXT_PART_CHARS - 1].rstrip() + "…"


def _document_name(path: str | None, title: str | None, heading_path: Sequence[str]) -> list[str]:
    names = [name for name in (path, title) if name]
    # A Markdown title is usually the first heading too: say it once.
    if len(names) == 2 and (names[0] == names[1] or (heading_path and heading_path[0] == names[1])):
        names.pop()
    return names


def chunk_embedding_text(title: str | None, path: str | None, heading_path: Sequence[str], text: str) -> str:
    """The text embedded for a chunk: a context line (``README.md › Install › From source``) and the text.

    The line is kept short (about 40 tokens at most) so it fits beside a full chunk in the model's window:
    each part is cut at 60 characters, and the outermost headings give way first."""
    names = [_short(name) for name in _document_name(path, title, heading_path)]
    headings = [_short(heading) for heading in heading_path]
    dropped = False
    while len(headings) > 1 and len(_SEP.join([*names, *(["…"] if dropped else []), *headings])) > CONTEXT_CHARS:
        headings.pop(0)
        dropped = True
    if dropped:
        headings.insert(0, "…")
    context = _SEP.join([*names, *headings])
    return f"{context}\n{text}" if context else text


def citation(path: str | None, title: str | None, chunk: Citable) -> str:
    """Where a hit comes from: ``README.md, section Install › From source, lines 12–30``,
    ``app.py, class Store › def get, lines 40–58`` or ``report.pdf, page 3``."""
    name = path or title or "document"
    headings = list(chunk.heading_path)
    if headings and headings[0] in (name, title):
        headings = headings[1:]  # the document's own title heading says nothing the name does not
    parts = [name]
    if headings:
        section = _SEP.join(headings)
        parts.append(section if code_language(path) else f"section {section}")
    if chunk.page is not None:
        parts.append(f"page {chunk.page}")
    elif chunk.start_line == chunk.end_line:
        parts.append(f"line {chunk.start_line}")
    else:
        parts.append(f"lines {chunk.start_line}–{chunk.end_line}")
    return ", ".join(parts)

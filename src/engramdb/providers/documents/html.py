"""HTML to Markdown-like text, with the standard library's parser.

Only what helps search survives: text, block structure as blank lines, headings as ``#`` lines (so the
Markdown splitter can cut at them and chunks know their section), list items as ``- `` lines and ``<pre>``
as fenced blocks. Scripts, styles and other non-content elements are dropped with their contents.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_DROPPED = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object"})
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "dd", "details", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "main", "nav",
        "ol", "p", "section", "summary", "table", "tbody", "thead", "tfoot", "ul",
    }
)  # fmt: skip
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.dropped = 0  # depth inside dropped elements
        self.pre = 0
        self.heading: list[str] | None = None
        self.heading_level = 0
        self.in_title = False
        self.title_parts: list[str] = []
        self.first_h1: str | None = None
        self.row_has_cell = False

    # Output helpers -------------------------------------------------------------------------------

    def _ends_with_space(self) -> bool:
        return not self.out or self.out[-1][-1:] in (" ", "\n")

    def _at_line_start(self) -> bool:
        return not self.out or self.out[-1].endswith("\n")

    def _break(self, newlines: str = "\n\n") -> None:
        self.out.append(newlines)

    # Parser callbacks -----------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self.dropped += 1
        if self.dropped:
            return
        if tag in _HEADINGS or tag in _BLOCKS or tag in ("pre", "li", "tr", "hr"):
            self._end_heading()  # an unclosed heading must not swallow what follows
        if tag == "title":
            self.in_title = True
        elif tag in _HEADINGS:
            self.heading, self.heading_level = [], _HEADINGS[tag]
        elif tag == "pre":
            self._break()
            self.out.append("```\n")
            self.pre += 1
        elif tag == "br":
            self.out.append(" " if self.heading is not None else "\n")
        elif tag == "hr":
            self._break()
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "tr":
            self._break("\n")
            self.row_has_cell = False
        elif tag in ("td", "th"):
            if self.row_has_cell:
                self.out.append(" | ")
            self.row_has_cell = True
        elif tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            self.dropped = max(0, self.dropped - 1)
            return
        if self.dropped:
            return
        if tag == "title":
            self.in_title = False
        elif tag in _HEADINGS:
            self._end_heading()
        elif tag == "pre" and self.pre:
            self.pre -= 1
            if not self._at_line_start():
                self.out.append("\n")
            self.out.append("```")
            self._break()
        elif tag in _BLOCKS:
            self._break()

    def _end_heading(self) -> None:
        if self.heading is None:
            return
        text = _SPACES.sub(" ", "".join(self.heading)).strip()
        self.heading = None
        if text:
            self._break()
            self.out.append(f"{'#' * self.heading_level} {text}")
            self._break()
            if self.heading_level == 1 and self.first_h1 is None:
                self.first_h1 = text

    def close(self) -> None:
        super().close()
        self._end_heading()

    def handle_data(self, data: str) -> None:
        if self.dropped:
            return
        if self.in_title:
            self.title_parts.append(data)
        elif self.heading is not None:
            self.heading.append(data)
        elif self.pre:
            self.out.append(data)
        else:
            text = _SPACES.sub(" ", data)
            if self._ends_with_space():
                text = text.lstrip()
            if text.startswith("#") and self._at_line_start():
                text = "\\" + text  # text, not a heading
            if text:
                self.out.append(text)


def _tidy(text: str) -> str:
    """Trim each line (outside fenced blocks) and squeeze blank runs to one blank line."""
    lines: list[str] = []
    fenced = False
    for line in text.split("\n"):
        if line == "```":
            fenced = not fenced
            lines.append(line)
        else:
            lines.append(line.rstrip() if fenced else line.strip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def html_to_markdown(html: str) -> tuple[str, str | None]:
    """The Markdown-like text of an HTML document, and its title (``<title>``, else the first ``<h1>``)."""
    converter = _Converter()
    converter.feed(html)
    converter.close()
    title = _SPACES.sub(" ", "".join(converter.title_parts)).strip() or converter.first_h1
    return _tidy("".join(converter.out)), title

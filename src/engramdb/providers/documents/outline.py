"""Where a chunk sits in its document: the Markdown headings above it, or the code definitions around it.

The splitters say where to cut; they do not report structure, so it is read here: Markdown headings
(ATX and setext, not inside fenced code or front matter), Python definitions with :mod:`ast`, and for other
languages the definitions that start at column 0 (functions, classes, types), found with a small pattern.
"""

from __future__ import annotations

import ast
import bisect
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_NOT_PARAGRAPH = re.compile(r"^ {0,3}(?:[-*+>|]|\d+[.)]|#|$)|^ {4}")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"`|\*\*|__")
_FRONT_MATTER = re.compile(r"---\n(?=\S).*?\n(?:---|\.\.\.)[ \t]*(?:\n|$)", re.DOTALL)


@dataclass(frozen=True)
class Heading:
    offset: int  # where the heading's first line starts
    level: int
    text: str
    end: int  # where its last line ends (a setext heading's underline)


@dataclass(frozen=True)
class Section:
    """A stretch of Markdown that sits under one heading path: its headings, then the text under them."""

    start: int  # where its first heading starts (0 for the text before the first heading)
    body: int  # where its headings end: the text under them starts here (== start without headings)
    end: int
    path: tuple[str, ...]


def _lines(text: str) -> Iterator[tuple[int, str]]:
    offset = 0
    for line in text.split("\n"):
        yield offset, line
        offset += len(line) + 1


def _clean(heading: str) -> str:
    return _EMPHASIS.sub("", _LINK.sub(r"\1", heading)).strip()


def markdown_headings(text: str) -> list[Heading]:
    headings: list[Heading] = []
    fence: str | None = None
    front_matter = _FRONT_MATTER.match(text)
    body = front_matter.end() if front_matter else 0
    previous: tuple[int, str] | None = None  # the last line, if it could be a setext heading's text
    for offset, line in _lines(text):
        if offset < body:
            continue
        opening = _FENCE.match(line)
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]}:
                fence = None
            continue
        if opening:
            fence, previous = opening.group(1), None
            continue
        atx = _ATX.match(line)
        setext = _SETEXT.match(line)
        if atx:
            title = _clean(atx.group(2) or "")
            if title:
                headings.append(Heading(offset, len(atx.group(1)), title, offset + len(line)))
            previous = None
        elif setext and previous is not None:
            if title := _clean(previous[1]):
                level = 1 if setext.group(1)[0] == "=" else 2
                headings.append(Heading(previous[0], level, title, offset + len(line)))
            previous = None
        else:
            previous = None if _NOT_PARAGRAPH.match(line) else (offset, line)
    return headings


def markdown_title(text: str) -> str | None:
    """The text of the first level-1 heading, if any."""
    return next((h.text for h in markdown_headings(text) if h.level == 1), None)


def _paths(headings: list[Heading]) -> Iterator[tuple[Heading, tuple[str, ...]]]:
    """Each heading with the path it opens (the headings above it, by level, and itself)."""
    stack: list[Heading] = []
    for heading in headings:
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
        yield heading, tuple(h.text for h in stack)


def markdown_sections(text: str) -> list[Section]:
    """The text cut before every heading, so that each section's text is under exactly one heading path.

    Headings with nothing but blank lines between them (``# Guide`` then ``## Install``) open one section,
    with the innermost path: a section is never only headings, except headings that end the document.
    The text before the first heading, if any, is a section with the empty path."""
    sections: list[Section] = []
    for heading, path in _paths(markdown_headings(text)):
        last = sections[-1] if sections else None
        if last is not None and last.body > last.start and not text[last.body : heading.offset].strip():
            sections[-1] = Section(last.start, heading.end, last.end, path)  # a run of headings
            continue
        if last is None and text[: heading.offset].strip():
            sections.append(Section(0, 0, 0, ()))
        sections.append(Section(heading.offset, heading.end, 0, path))
    if not sections:
        return [Section(0, 0, len(text), ())]
    ends = [s.start for s in sections[1:]] + [len(text)]
    return [Section(s.start, s.body, end, s.path) for s, end in zip(sections, ends, strict=True)]


class HeadingIndex:
    """The heading path in force at any offset of a Markdown text."""

    def __init__(self, text: str) -> None:
        self._offsets: list[int] = []
        self._paths: list[tuple[str, ...]] = []
        for heading, path in _paths(markdown_headings(text)):
            self._offsets.append(heading.offset)
            self._paths.append(path)

    def path_at(self, offset: int) -> tuple[str, ...]:
        index = bisect.bisect_right(self._offsets, offset) - 1
        return self._paths[index] if index >= 0 else ()


# Code ---------------------------------------------------------------------------------------------------

_JS = re.compile(
    r"^(?:export\s+)?(?:default\s+)?(?:declare\s+)?(?:abstract\s+)?(?:async\s+)?"
    r"(?:(function)\*?|(class|interface|enum|type|namespace)|(const|let|var))\s+([\w$]+)"
)
_TOP_LEVEL: dict[str, re.Pattern[str]] = {
    "python": re.compile(r"^(?:async\s+)?(def|class)\s+(\w+)"),
    "javascript": _JS,
    "typescript": _JS,
    "tsx": _JS,
    "go": re.compile(r"^(func)\s+(?:\(\s*\w*\s*\*?\s*(\w+)[^)]*\)\s*)?(\w+)|^(type)\s+(\w+)"),
    "rust": re.compile(
        r"^(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|async|unsafe|extern\s+\"[^\"]*\")\s+)*"
        r"(fn|struct|enum|trait|mod|union|type|impl\b(?:<[^>]*>)?)\s*([^{;(<=]*)"
    ),
    "java": re.compile(
        r"^(?:(?:public|protected|private|abstract|final|static|sealed|non-sealed|strictfp)\s+)*"
        r"(class|interface|enum|record|@interface)\s+(\w+)"
    ),
}
# Lines at column 0 that neither start nor end a definition: closers, comments, decorators, attributes.
_NEUTRAL = re.compile(r"^(?:[\s})\]]|//|/\*|\*|#|@|$)")
_NEUTRAL_PYTHON = re.compile(r"^(?:[\s})\]]|#|@|$)")
_LEADING = ("#", "//", "/*", "*", "@")


def _leads_in(line: str) -> bool:
    """Blank, comment, decorator and attribute lines lead into what follows them."""
    stripped = line.lstrip()
    return not stripped or stripped.startswith(_LEADING)


def _label(language: str, match: re.Match[str]) -> str | None:
    groups = match.groups()
    if language in ("javascript", "typescript", "tsx"):
        keyword = groups[0] or groups[1] or groups[2]
        return f"{keyword} {groups[3]}"
    if language == "go":
        if groups[0]:
            return f"func {groups[1]}.{groups[2]}" if groups[1] else f"func {groups[2]}"
        return f"type {groups[4]}"
    if language == "rust":
        keyword = "impl" if groups[0].startswith("impl") else groups[0]
        name = " ".join(groups[1].split())
        return f"{keyword} {name}" if name else None
    return f"{match.group(1)} {match.group(2)}"


@dataclass(frozen=True)
class _Definition:
    start: int  # 1-based lines, inclusive
    end: int
    path: tuple[str, ...]  # its own label last
    parent: int  # index of the enclosing definition, or -1


class DefinitionIndex:
    """The definitions enclosing any line of a source file: nested for Python, top-level otherwise."""

    def __init__(self, text: str, language: str | None) -> None:
        self._lines = text.split("\n")
        self._python = language == "python"
        self._definitions: list[_Definition] = []  # ordered by start, ranges properly nested
        if self._python:
            self._definitions = self._from_ast(text)
        if not self._definitions and language in _TOP_LEVEL:
            self._definitions = self._from_patterns(_TOP_LEVEL[language], language)
        self._starts = [d.start for d in self._definitions]

    @staticmethod
    def _from_ast(text: str) -> list[_Definition]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes and the like are not our concern
                tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return []
        found: list[_Definition] = []

        def visit(body: list[ast.stmt], parent: int) -> None:
            for node in body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    kind = {ast.ClassDef: "class", ast.AsyncFunctionDef: "async def"}.get(type(node), "def")
                    outer = found[parent].path if parent >= 0 else ()
                    found.append(
                        _Definition(start, node.end_lineno or node.lineno, (*outer, f"{kind} {node.name}"), parent)
                    )
                    visit(node.body, len(found) - 1)

        visit(tree.body, -1)
        return found

    def _from_patterns(self, pattern: re.Pattern[str], language: str) -> list[_Definition]:
        neutral = _NEUTRAL_PYTHON if self._python else _NEUTRAL
        starts: list[tuple[int, str | None]] = []  # every column-0 statement: (line, label or None)
        for number, line in enumerate(self._lines, start=1):
            if neutral.match(line):
                continue
            match = pattern.match(line)
            starts.append((number, _label(language, match) if match else None))
        found: list[_Definition] = []
        ends = [following - 1 for following, _ in starts[1:]] + ([len(self._lines)] if starts else [])
        for (first, label), last in zip(starts, ends, strict=True):
            if label:
                found.append(_Definition(first, last, (label,), -1))
        return found

    def path_at(self, line: int) -> tuple[str, ...]:
        """The definitions around the first line of substance from ``line`` on: blank, comment, decorator
        and attribute lines belong to the definition they lead into (even past the end of a chunk)."""
        while line < len(self._lines) and _leads_in(self._lines[line - 1]):
            line += 1
        # The last definition starting at or before the line encloses it, or one of its ancestors does.
        index = bisect.bisect_right(self._starts, line) - 1
        while index >= 0 and self._definitions[index].end < line:
            index = self._definitions[index].parent
        return self._definitions[index].path if index >= 0 else ()

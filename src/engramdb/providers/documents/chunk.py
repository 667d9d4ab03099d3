"""Structure-aware chunking, sized in the embedder's own tokens.

First the document is cut where no chunk may cross: Markdown (and HTML, through its Markdown-like text)
before every heading (:func:`.outline.markdown_sections`), a PDF between its pages. A piece that fits is a
chunk as it is; a larger one is cut by ``semantic-text-splitter`` (Rust): Markdown at blocks, paragraphs,
sentences; code at syntax nodes, through a tree-sitter grammar for the languages in :data:`GRAMMARS`;
everything else at paragraphs, then sentences. So a chunk's heading path is the one all its text is under,
its page the one its text is on, and a heading is never a chunk of its own. Cutting sections first is also
faster than giving the splitter the whole text (a 1 MB Markdown file: about 3x, see ``docs/benchmarks.md``).

Sizes are counted with the MiniLM WordPiece tokenizer (no special tokens), so a chunk of ``max_tokens``
leaves room in the model's 256-token window for ``[CLS]``, ``[SEP]`` and the context line of
:func:`chunk_embedding_text`.

The splitter's offsets are character (code point) offsets into the Python string, not UTF-8 bytes: the
binding converts them, which the tests pin with non-ASCII text.
"""

from __future__ import annotations

import bisect
import importlib
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from tokenizers import BertWordPieceTokenizer

from engramdb.providers.documents.outline import DefinitionIndex, markdown_sections
from engramdb.providers.documents.parse import Parsed

VOCAB_PATH = Path(__file__).parents[1] / "data" / "minilm-vocab.txt"

# Language → (module, function returning the tree-sitter language). Each is a small PyPI wheel.
GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
}


@dataclass(frozen=True)
class Chunk:
    ordinal: int  # 0..n-1 in document order
    text: str  # == parsed.text[char_start:char_end], trimmed
    char_start: int  # character (code point) offsets into Parsed.text
    char_end: int
    start_line: int  # 1-based, inclusive, in Parsed.text
    end_line: int
    # Markdown and HTML: the headings its text is under ("Install", "From source").
    # Code: the definitions around its first line of substance ("class Store", "def get"). Else ().
    heading_path: tuple[str, ...]
    page: int | None  # PDF: the 1-based page its text is on (a chunk never spans two)
    token_count: int  # MiniLM WordPiece tokens, without [CLS]/[SEP]


@lru_cache(maxsize=1)
def minilm_tokenizer() -> BertWordPieceTokenizer:
    """The WordPiece tokenizer of all-MiniLM-L6-v2, built as :mod:`engramdb.providers.minilm` builds it,
    without truncation (a truncating tokenizer would make every long text look short to the splitter)."""
    return BertWordPieceTokenizer(str(VOCAB_PATH), lowercase=True, strip_accents=None)


def count_tokens(texts: list[str]) -> list[int]:
    """Tokens per text as the splitter counts them: without ``[CLS]`` and ``[SEP]``."""
    encodings = minilm_tokenizer().encode_batch(texts, add_special_tokens=False)
    return [len(encoding.ids) for encoding in encodings]


def _grammar(language: str | None) -> Any:
    if language not in GRAMMARS:
        return None
    module, function = GRAMMARS[language]
    try:
        return getattr(importlib.import_module(module), function)()
    except ImportError:
        return None


@lru_cache(maxsize=32)
def _splitter(kind: str, grammar_language: str | None, max_tokens: int, overlap: int) -> Any:
    """Built once per shape: building one serializes the tokenizer (~30 ms)."""
    from semantic_text_splitter import CodeSplitter, MarkdownSplitter, TextSplitter

    tokenizer = minilm_tokenizer()
    if kind == "markdown":
        return MarkdownSplitter.from_huggingface_tokenizer(tokenizer, max_tokens, overlap=overlap)
    grammar = _grammar(grammar_language)
    if grammar is not None:
        return CodeSplitter.from_huggingface_tokenizer(grammar, tokenizer, max_tokens, overlap=overlap)
    return TextSplitter.from_huggingface_tokenizer(tokenizer, max_tokens, overlap=overlap)


def _kind(parsed: Parsed) -> str:
    if parsed.content_type in ("text/markdown", "text/html"):
        return "markdown"
    return "code" if parsed.content_type == "text/x-code" else "text"


CHARS_PER_TOKEN_CAP = 8  # WordPiece counts a 1 MB word as one [UNK] token: bound chunks by characters too


def _bounded(start: int, piece: str, max_tokens: int) -> list[tuple[int, str]]:
    """``piece`` cut into windows of at most ``max_tokens × CHARS_PER_TOKEN_CAP`` characters (a chunk of
    long unbroken strings, minified code or base64, would otherwise be one huge chunk)."""
    limit = max_tokens * CHARS_PER_TOKEN_CAP
    if len(piece) <= limit:
        return [(start, piece)]
    windows = [_trimmed(piece, i, min(i + limit, len(piece))) for i in range(0, len(piece), limit)]
    return [(start + first, piece[first:last]) for first, last in windows if last > first]


@dataclass(frozen=True)
class _Segment:
    """A stretch that no chunk crosses: a Markdown section or a PDF page (else the whole text)."""

    start: int  # where its text starts, headings included
    body: int  # where the text under its headings starts (== start without headings)
    end: int
    path: tuple[str, ...]
    page: int | None


def _segments(parsed: Parsed, kind: str) -> list[_Segment]:
    if kind == "markdown":
        return [_Segment(s.start, s.body, s.end, s.path, None) for s in markdown_sections(parsed.text)]
    if parsed.page_starts:
        ends = [*parsed.page_starts[1:], len(parsed.text)]  # the page break between is blank: trimmed away
        pages = zip(parsed.page_starts, ends, strict=True)
        return [_Segment(start, start, end, (), number) for number, (start, end) in enumerate(pages, start=1)]
    return [_Segment(0, 0, len(parsed.text), (), None)]


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """``start, end`` moved inward past white space (an empty range if there is nothing else)."""
    piece = text[start:end]
    stripped = piece.strip()
    if not stripped:
        return start, start
    lead = len(piece) - len(piece.lstrip())
    return start + lead, start + lead + len(stripped)


class _Piece(NamedTuple):
    start: int
    end: int
    tokens: int
    segment: _Segment


def _spans(text: str, segments: list[_Segment]) -> list[tuple[_Segment, int, int, int]]:
    """``(segment, start, body start, end)``, trimmed, for the segments with text under their headings.
    A document of nothing but headings keeps them as its text."""
    spans = []
    for segment in segments:
        body_start, end = _trimmed(text, segment.body, segment.end)
        if end > body_start:
            spans.append((segment, _trimmed(text, segment.start, end)[0], body_start, end))
    if spans:
        return spans
    bare = [(replace(segment, body=segment.start), *_trimmed(text, segment.start, segment.end)) for segment in segments]
    return [(segment, start, start, end) for segment, start, end in bare if end > start]


WINDOW_CHARS = 32_768  # the splitter is handed at most this much at once (see _windows)
_BREAKS = ("\n\n", "\n", ". ", " ")  # where a window may end, best first


def _windows(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``text[start:end]`` as consecutive ranges of at most :data:`WINDOW_CHARS`, each ending at the best
    break in its last quarter (a blank line, a line end, a sentence end, a space). The splitter's time
    grows faster than its input where the text has few breaks of its kind (4.7 MB on one line took 112 s;
    in windows, linear time), and a window is far larger than a chunk, so only the chunks at a window's
    edge are cut differently."""
    ranges = []
    while end - start > WINDOW_CHARS:
        limit = start + WINDOW_CHARS
        cut = limit
        for mark in _BREAKS:
            found = text.rfind(mark, limit - WINDOW_CHARS // 4, limit)
            if found > start:
                cut = found + len(mark)
                break
        ranges.append((start, cut))
        start = cut
    ranges.append((start, end))
    return ranges


def _split(text: str, span: tuple[_Segment, int, int, int], splitter: Any, max_tokens: int) -> list[_Piece]:
    """A segment too large for one chunk: the text under its headings is split, and the headings go before
    the first piece when they fit there. When they do not, they still reach every piece through its heading
    path (the embedding's context line, the keyword column, the citation): a chunk is never a lone heading."""
    segment, start, body_start, end = span
    cuts = [
        cut
        for first, last in _windows(text, body_start, end)
        for offset, piece in splitter.chunk_indices(text[first:last])
        if piece.strip()
        for cut in _bounded(first + offset, piece, max_tokens)
    ]
    if not cuts:
        return []
    heading = text[start:body_start].strip()
    *tokens, heading_tokens = count_tokens([piece for _, piece in cuts] + [heading])
    pieces = [_Piece(cut, cut + len(piece), n, segment) for (cut, piece), n in zip(cuts, tokens, strict=True)]
    first = pieces[0]
    # WordPiece splits at white space, so the joined text counts as the sum of its parts.
    if (
        heading
        and first.tokens + heading_tokens <= max_tokens
        and first.end - start <= max_tokens * CHARS_PER_TOKEN_CAP
    ):
        pieces[0] = _Piece(start, first.end, first.tokens + heading_tokens, segment)
    return pieces


def _pieces(text: str, segments: list[_Segment], splitter: Any, max_tokens: int) -> list[_Piece]:
    """Every chunk's range, in document order. A segment that fits (in tokens and characters) is one chunk,
    without asking the splitter (most Markdown sections do, and that is most of the time saved)."""
    spans = _spans(text, segments)
    limit = max_tokens * CHARS_PER_TOKEN_CAP
    small = [i for i, (_, start, _, end) in enumerate(spans) if end - start <= limit]
    counted = count_tokens([text[spans[i][1] : spans[i][3]] for i in small])
    fitting = {i: n for i, n in zip(small, counted, strict=True) if n <= max_tokens}
    pieces: list[_Piece] = []
    for i, span in enumerate(spans):
        if i in fitting:
            pieces.append(_Piece(span[1], span[3], fitting[i], span[0]))
        else:
            pieces.extend(_split(text, span, splitter, max_tokens))
    return pieces


def chunk_document(parsed: Parsed, *, max_tokens: int = 200, overlap_tokens: int = 30) -> list[Chunk]:
    """Cut a parsed document into chunks of at most ``max_tokens`` tokens, consecutive chunks sharing up
    to ``overlap_tokens``. Each chunk knows its character range, 1-based inclusive line range (in
    ``parsed.text``), heading or definition path, and PDF page. Deterministic.

    No chunk crosses a Markdown heading or a PDF page: each is cut within its section (so its heading path
    is the one its text is under, and it starts with its headings when they fit) or its page (so its page
    is where its text is). Documents of other kinds are cut as a whole."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be at least 0 and less than max_tokens")
    text = parsed.text
    kind = _kind(parsed)
    grammar_language = parsed.code_language if kind == "code" and parsed.code_language in GRAMMARS else None
    splitter = _splitter(kind, grammar_language, max_tokens, overlap_tokens)
    pieces = _pieces(text, _segments(parsed, kind), splitter, max_tokens)
    if not pieces:
        return []
    line_starts = [0, *(match.end() for match in re.finditer("\n", text))]
    definitions = DefinitionIndex(text, parsed.code_language) if kind == "code" else None
    chunks: list[Chunk] = []
    for ordinal, (start, end, tokens, segment) in enumerate(pieces):
        start_line = bisect.bisect_right(line_starts, start)
        end_line = bisect.bisect_right(line_starts, end - 1)
        path = definitions.path_at(start_line) if definitions is not None else segment.path
        chunks.append(Chunk(ordinal, text[start:end], start, end, start_line, end_line, path, segment.page, tokens))
    return chunks

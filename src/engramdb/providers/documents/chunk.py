"""Structure-aware chunking, sized in the embedder's own tokens.

The cutting is done by ``semantic-text-splitter`` (Rust): Markdown (and HTML, through its Markdown-like
text) at headings, then blocks, paragraphs, sentences; code at syntax nodes, through a tree-sitter grammar
for the languages in :data:`GRAMMARS`; everything else at paragraphs, then sentences. Sizes are counted with
the MiniLM WordPiece tokenizer (no special tokens), so a chunk of ``max_tokens`` leaves room in the model's
256-token window for ``[CLS]``, ``[SEP]`` and the context line of :func:`chunk_embedding_text`.

The splitter's offsets are character (code point) offsets into the Python string, not UTF-8 bytes: the
binding converts them, which the tests pin with non-ASCII text.
"""

from __future__ import annotations

import bisect
import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tokenizers import BertWordPieceTokenizer

from engramdb.providers.documents.outline import DefinitionIndex, HeadingIndex
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
    # Markdown and HTML: the headings in force where the chunk starts ("Install", "From source").
    # Code: the definitions around its first line of substance ("class Store", "def get"). Else ().
    heading_path: tuple[str, ...]
    page: int | None  # PDF: the 1-based page where the chunk starts
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
    return [(start + i, piece[i : i + limit]) for i in range(0, len(piece), limit) if piece[i : i + limit].strip()]


def chunk_document(parsed: Parsed, *, max_tokens: int = 200, overlap_tokens: int = 30) -> list[Chunk]:
    """Cut a parsed document into chunks of at most ``max_tokens`` tokens, consecutive chunks sharing up
    to ``overlap_tokens``. Each chunk knows its character range, 1-based inclusive line range (in
    ``parsed.text``), heading or definition path, and PDF page. Deterministic."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be at least 0 and less than max_tokens")
    text = parsed.text
    kind = _kind(parsed)
    grammar_language = parsed.code_language if kind == "code" and parsed.code_language in GRAMMARS else None
    splitter = _splitter(kind, grammar_language, max_tokens, overlap_tokens)
    pieces = [
        cut
        for start, piece in splitter.chunk_indices(text)
        if piece.strip()
        for cut in _bounded(start, piece, max_tokens)
    ]
    if not pieces:
        return []
    line_starts = [0, *(match.end() for match in re.finditer("\n", text))]
    headings = HeadingIndex(text) if kind == "markdown" else None
    definitions = DefinitionIndex(text, parsed.code_language) if kind == "code" else None
    chunks: list[Chunk] = []
    for ordinal, ((start, piece), tokens) in enumerate(zip(pieces, count_tokens([p for _, p in pieces]), strict=True)):
        end = start + len(piece)
        start_line = bisect.bisect_right(line_starts, start)
        end_line = bisect.bisect_right(line_starts, end - 1)
        if headings is not None:
            path = headings.path_at(start)
        elif definitions is not None:
            path = definitions.path_at(start_line)
        else:
            path = ()
        page = bisect.bisect_right(parsed.page_starts, start) if parsed.page_starts else None
        chunks.append(Chunk(ordinal, piece, start, end, start_line, end_line, path, page, tokens))
    return chunks

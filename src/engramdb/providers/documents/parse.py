"""Turning an uploaded file into text: which kind it is, and what it says.

Five kinds are read: plain text, Markdown, source code (the language comes from the extension), HTML
(converted to Markdown-like text, see :mod:`.html`) and PDF (text per page, with pypdf). Anything else,
binary data, text that is not UTF-8 (or UTF-16 with a BOM), and documents without any text are refused
with a 4xx that names the file and says what is supported.
"""

from __future__ import annotations

import codecs
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from engramdb.errors import EmptyContent, PayloadTooLarge, UnsupportedContent
from engramdb.providers.documents.html import html_to_markdown
from engramdb.providers.documents.outline import markdown_title

ContentType = Literal["text/plain", "text/markdown", "text/x-code", "text/html", "application/pdf"]

MAX_DOCUMENT_BYTES: int = 10 * 1024 * 1024
# Between two PDF pages: a blank stretch (no chunk crosses it: ``Parsed.page_starts`` say where pages start).
# No form feed: it would be stored in the document's text and shown to whoever reads it.
PAGE_BREAK = "\n\n\n"
SUPPORTED = "plain text, Markdown, source code, HTML or PDF"
_SNIFF_BYTES = 8192

_EXTENSION_TYPES: dict[str, ContentType] = {
    **dict.fromkeys((".md", ".markdown", ".mdown", ".mkd"), "text/markdown"),
    **dict.fromkeys((".html", ".htm", ".xhtml"), "text/html"),
    ".pdf": "application/pdf",
    # reStructuredText is read as plain text: its headings are not Markdown's.
    **dict.fromkeys((".txt", ".text", ".rst", ".log", ".csv", ".tsv"), "text/plain"),
}

CODE_LANGUAGES: dict[str, str] = {
    **dict.fromkeys((".py", ".pyi"), "python"),
    **dict.fromkeys((".js", ".mjs", ".cjs", ".jsx"), "javascript"),
    **dict.fromkeys((".ts", ".mts", ".cts"), "typescript"),
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    **dict.fromkeys((".c", ".h"), "c"),
    **dict.fromkeys((".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx"), "cpp"),
    ".cs": "csharp",
    **dict.fromkeys((".kt", ".kts"), "kotlin"),
    ".swift": "swift",
    ".scala": "scala",
    ".rb": "ruby",
    ".php": "php",
    ".lua": "lua",
    **dict.fromkeys((".sh", ".bash", ".zsh"), "shell"),
    ".sql": "sql",
    **dict.fromkeys((".css", ".scss"), "css"),
    # Configuration files are code too: kept verbatim, cited by line, split as text.
    ".toml": "toml",
    **dict.fromkeys((".yaml", ".yml"), "yaml"),
    ".json": "json",
    ".ini": "ini",
}
_CODE_FILENAMES = {"dockerfile": "dockerfile", "makefile": "make"}

# Declared MIME types worth believing. ``text/plain`` is left out on purpose: clients send it for any
# text file, so a more specific extension wins over it (see detect_content_type).
_MIME_TYPES: dict[str, ContentType] = {
    **dict.fromkeys(("text/markdown", "text/x-markdown"), "text/markdown"),
    **dict.fromkeys(("text/html", "application/xhtml+xml"), "text/html"),
    **dict.fromkeys(("application/pdf", "application/x-pdf"), "application/pdf"),
    "text/x-code": "text/x-code",
}
# Source code by MIME type: the language still comes from the extension (parse sees no MIME type).
_CODE_MIME_TYPES = {
    "text/x-python",
    "text/x-script.python",
    "text/javascript",
    "application/javascript",
    "application/typescript",
    "text/x-go",
    "text/x-rust",
    "text/x-java",
    "text/x-java-source",
    "text/x-c",
    "text/x-c++",
    "application/json",
    "application/toml",
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "application/sql",
    "application/x-sh",
    "text/x-shellscript",
}
_HTML_START = re.compile(
    rb"(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]", re.IGNORECASE | re.DOTALL
)


@dataclass(frozen=True)
class Parsed:
    text: str
    content_type: ContentType
    code_language: str | None
    title: str | None
    page_starts: tuple[int, ...] = ()


def _name(filename: str | None) -> str:
    return repr(filename) if filename else "the document"


def _suffix(filename: str | None) -> str:
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower() if filename else ""


def code_language(filename: str | None) -> str | None:
    """The language of a source or configuration file, from its extension (``None`` if not code)."""
    if not filename:
        return None
    base = PurePosixPath(filename.replace("\\", "/")).name.lower()
    return CODE_LANGUAGES.get(_suffix(filename)) or _CODE_FILENAMES.get(base)


def _mime(declared: str | None) -> str:
    return (declared or "").split(";", 1)[0].strip().lower()


def _from_mime(declared: str | None) -> ContentType | None:
    mime = _mime(declared)
    return "text/x-code" if mime in _CODE_MIME_TYPES else _MIME_TYPES.get(mime)


def _from_extension(filename: str | None) -> ContentType | None:
    if code_language(filename):
        return "text/x-code"
    return _EXTENSION_TYPES.get(_suffix(filename))


def _is_pdf(data: bytes) -> bool:
    # The specification lets junk precede the header; readers look in the first kilobyte.
    return b"%PDF-" in data[:1024]


def detect_content_type(filename: str | None, declared: str | None, data: bytes) -> ContentType:
    """The kind of an upload: PDF by its magic bytes; else a specific declared MIME type; else the
    extension; else a declared ``text/plain``; else HTML by its opening tag; else plain text.
    Binary data, and text that is not UTF-8, is refused with :class:`UnsupportedContent`."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    kind = _from_mime(declared) or _from_extension(filename)
    if kind is None and _mime(declared) != "text/plain" and _HTML_START.match(data[:_SNIFF_BYTES]):
        kind = "text/html"
    kind = kind or "text/plain"
    if kind == "application/pdf":
        if not _is_pdf(data):
            raise UnsupportedContent(f"{_name(filename)} is not a PDF (no %PDF- header)")
        return kind
    _check_text(data[:_SNIFF_BYTES], filename, final=len(data) <= _SNIFF_BYTES)
    return kind


def _utf16_bom(data: bytes) -> bool:
    return data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))


def _check_text(head: bytes, filename: str | None, *, final: bool) -> None:
    if _utf16_bom(head):
        return
    if b"\x00" in head:
        raise UnsupportedContent(f"{_name(filename)} looks like binary data; Engram reads {SUPPORTED}")
    try:
        # Not final: the sample may end inside a multi-byte character.
        codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=final)
    except UnicodeDecodeError as exc:
        raise UnsupportedContent(
            f"{_name(filename)} is not UTF-8 text (byte {exc.start}); Engram reads {SUPPORTED}"
        ) from exc


def _decode(data: bytes, filename: str | None) -> str:
    if _utf16_bom(data):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UnsupportedContent(f"{_name(filename)} is not valid UTF-16 text") from exc
    else:
        _check_text(data[:_SNIFF_BYTES], filename, final=len(data) <= _SNIFF_BYTES)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UnsupportedContent(
                f"{_name(filename)} is not UTF-8 text (byte {exc.start}); Engram reads {SUPPORTED}"
            ) from exc
    # One line ending, so that line numbers and offsets mean the same thing everywhere; form feeds (page
    # breaks of old text files) are dropped: they are no line break for an editor and noise in a chunk.
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "")


def parse(data: bytes, content_type: ContentType, filename: str | None = None) -> Parsed:
    """Extract the text of a document of the given kind (see :func:`detect_content_type`)."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(f"{_name(filename)} is over the {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB limit")
    if content_type == "application/pdf":
        return _parse_pdf(data, filename)
    text = _decode(data, filename)
    title: str | None = None
    language: str | None = None
    if content_type == "text/markdown":
        title = markdown_title(text)
    elif content_type == "text/html":
        text, title = html_to_markdown(text)
    elif content_type == "text/x-code":
        language = code_language(filename)
    if not text.strip():
        raise EmptyContent(f"{_name(filename)} has no text")
    return Parsed(text=text, content_type=content_type, code_language=language, title=title)


def _parse_pdf(data: bytes, filename: str | None) -> Parsed:
    from pypdf import PdfReader

    if not _is_pdf(data):
        raise UnsupportedContent(f"{_name(filename)} is not a PDF")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise UnsupportedContent(f"{_name(filename)} is a password-protected PDF")
            pages = [page.extract_text() or "" for page in reader.pages]
            meta = reader.metadata
            title = meta.title if meta is not None else None
    except UnsupportedContent:
        raise
    except Exception as exc:  # pypdf raises many kinds of error on damaged files; all mean "cannot read"
        raise UnsupportedContent(f"{_name(filename)} could not be read as a PDF ({exc})") from exc
    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    for page in pages:
        if parts:
            offset += len(PAGE_BREAK)
        starts.append(offset)
        cleaned = page.replace("\x00", "").replace("\f", "").replace("\r\n", "\n").replace("\r", "\n").strip()
        parts.append(cleaned)
        offset += len(cleaned)
    text = PAGE_BREAK.join(parts)
    if not text.strip():
        raise EmptyContent(
            f"{_name(filename)} has no extractable text (a scanned PDF needs OCR, which Engram does not do)"
        )
    clean_title = title.strip() if isinstance(title, str) else ""
    return Parsed(
        text=text,
        content_type="application/pdf",
        code_language=None,
        title=clean_title or None,
        page_starts=tuple(starts),
    )

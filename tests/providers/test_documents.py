"""Document parsing and chunking: pure functions, exact cases."""

from __future__ import annotations

import codecs

import pytest

from engramdb.errors import EmptyContent, PayloadTooLarge, UnsupportedContent, ValidationFailed
from engramdb.providers.documents import (
    MAX_DOCUMENT_BYTES,
    PAGE_BREAK,
    Chunk,
    Parsed,
    chunk_document,
    chunk_embedding_text,
    citation,
    code_language,
    count_tokens,
    detect_content_type,
    minilm_tokenizer,
    parse,
)
from engramdb.providers.documents import chunk as chunking
from engramdb.providers.documents.html import html_to_markdown
from engramdb.providers.documents.outline import HeadingIndex, markdown_headings, markdown_sections


def make_pdf(pages: list[str], *, title: str | None = None) -> bytes:
    """A minimal PDF with one line of Helvetica text per line of each page (offsets computed, not guessed)."""
    first_page = 4
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, text in enumerate(pages):
        ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
        for line in text.split("\n") if text else []:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {first_page + 2 * i + 1} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info = None
    if title is not None:
        objects.append(f"<< /Title ({title}) >>".encode("latin-1"))
        info = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R" + (f" /Info {info} 0 R" if info else "") + " >>"
    out += f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _parse(text: str, filename: str) -> Parsed:
    data = text.encode()
    return parse(data, detect_content_type(filename, None, data), filename)


def _check_positions(parsed: Parsed, chunks: list[Chunk]) -> None:
    """Every chunk's offsets, lines (1-based, inclusive) and ordinal agree with the text itself."""
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert parsed.text[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.start_line == parsed.text.count("\n", 0, chunk.char_start) + 1
        assert chunk.end_line == parsed.text.count("\n", 0, chunk.char_end - 1) + 1
        assert chunk.text.strip() == chunk.text != ""


# Content types -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "declared", "data", "expected"),
    [
        ("README.md", None, b"# Hi", "text/markdown"),
        ("notes.markdown", None, b"# Hi", "text/markdown"),
        ("notes", "text/markdown; charset=utf-8", b"# Hi", "text/markdown"),
        ("guide.rst", None, b"Title\n=====", "text/plain"),
        ("a.txt", None, b"hello", "text/plain"),
        ("LICENSE", None, b"Apache License", "text/plain"),
        ("data.xyz", "application/octet-stream", b"text", "text/plain"),
        (None, None, b"plain words", "text/plain"),
        ("app.py", None, b"x = 1", "text/x-code"),
        ("app.py", "text/plain", b"x = 1", "text/x-code"),  # a generic declared type yields to the extension
        ("src/index.tsx", None, b"x", "text/x-code"),
        ("config.yaml", None, b"a: 1", "text/x-code"),
        ("Dockerfile", None, b"FROM x", "text/x-code"),
        (None, "text/x-python", b"x = 1", "text/x-code"),
        ("page.html", None, b"<p>x</p>", "text/html"),
        (None, None, b"  <!DOCTYPE html><html><body>x</body></html>", "text/html"),
        (None, None, b"<!-- c --><HTML lang=en>x</HTML>", "text/html"),
        (None, None, codecs.BOM_UTF8 + b"<!doctype html>x", "text/html"),
        (None, "text/plain", b"<html><body>x</body></html>", "text/plain"),  # declared plain is respected
        ("report.pdf", None, make_pdf(["x"]), "application/pdf"),
        (None, None, make_pdf(["x"]), "application/pdf"),
        ("wrong.txt", "text/plain", make_pdf(["x"]), "application/pdf"),  # magic bytes win
    ],
)
def test_detect_content_type(filename: str | None, declared: str | None, data: bytes, expected: str) -> None:
    assert detect_content_type(filename, declared, data) == expected


def test_code_language_from_extension() -> None:
    assert code_language("pkg/mod.py") == "python"
    assert code_language("C:\\src\\main.RS") == "rust"
    assert code_language("x.mjs") == code_language("x.cjs") == "javascript"
    assert code_language("x.ts") == "typescript" and code_language("x.tsx") == "tsx"
    assert code_language("x.hpp") == "cpp" and code_language("x.h") == "c"
    assert code_language("x.yml") == "yaml" and code_language("Makefile") == "make"
    assert code_language("x.md") is None and code_language(None) is None


def test_binary_is_refused_with_the_file_name_and_what_is_supported() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100)
    with pytest.raises(UnsupportedContent, match=r"'logo\.png' looks like binary data.*Markdown.*PDF") as info:
        detect_content_type("logo.png", "image/png", png)
    assert info.value.status == 415 and info.value.slug == "unsupported-content"
    with pytest.raises(UnsupportedContent, match="binary"):
        parse(b"text\x00more", "text/plain", "x.txt")


def test_text_that_is_not_utf8_is_refused() -> None:
    latin1 = "café crème".encode("latin-1")
    with pytest.raises(UnsupportedContent, match=r"'menu\.txt' is not UTF-8 text \(byte 3\)"):
        detect_content_type("menu.txt", None, latin1)
    with pytest.raises(UnsupportedContent, match="not UTF-8"):
        parse(b"ok " * 5000 + latin1, "text/plain", "menu.txt")  # past the sniffed head


def test_a_multibyte_character_across_the_sniffed_head_is_fine() -> None:
    data = b"a" * 8191 + "é".encode()  # the 8 KB sample ends inside "é"
    assert detect_content_type("x.txt", None, data + b" more") == "text/plain"


def test_declared_pdf_that_is_not_one_is_refused() -> None:
    with pytest.raises(UnsupportedContent, match=r"'x\.pdf' is not a PDF \(no %PDF- header\)"):
        detect_content_type("x.pdf", "application/pdf", b"hello")
    with pytest.raises(UnsupportedContent, match="not a PDF"):
        parse(b"hello", "application/pdf", "x.pdf")


def test_damaged_pdf_is_refused() -> None:
    with pytest.raises(UnsupportedContent, match=r"'bad\.pdf' could not be read as a PDF"):
        parse(b"%PDF-1.4\nthis is not a pdf at all", "application/pdf", "bad.pdf")


# Parsing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \n\t\n", codecs.BOM_UTF8 + b"\n"])
def test_empty_text_is_refused(data: bytes) -> None:
    with pytest.raises(EmptyContent, match=r"'empty\.md' has no text") as info:
        parse(data, "text/markdown", "empty.md")
    assert info.value.status == 422 and info.value.slug == "empty-content"
    assert isinstance(info.value, ValidationFailed)


def test_html_with_only_scripts_is_empty() -> None:
    with pytest.raises(EmptyContent):
        parse(b"<html><script>alert(1)</script><style>p{}</style></html>", "text/html", None)


def test_over_the_size_limit_is_refused() -> None:
    with pytest.raises(PayloadTooLarge, match="10 MiB"):
        parse(b"a" * (MAX_DOCUMENT_BYTES + 1), "text/plain", "big.txt")


def test_plain_text_keeps_its_lines_with_one_line_ending() -> None:
    parsed = parse(codecs.BOM_UTF8 + b"one\r\ntwo\rthree\n", "text/plain", "a.txt")
    assert parsed == Parsed(text="one\ntwo\nthree\n", content_type="text/plain", code_language=None, title=None)


def test_utf16_with_a_bom_is_read() -> None:
    data = "# Titre\n\nété".encode("utf-16")
    assert detect_content_type("fr.md", None, data) == "text/markdown"
    parsed = parse(data, "text/markdown", "fr.md")
    assert parsed.text == "# Titre\n\nété" and parsed.title == "Titre"


def test_markdown_title_is_the_first_h1() -> None:
    text = "---\ntitle: front\n---\nIntro\n\n```\n# not a heading\n```\n\n## Sub\n\n# Real **title**\n"
    assert _parse(text, "a.md").title == "Real title"
    assert _parse("Setext title\n============\n\nbody", "a.md").title == "Setext title"
    assert _parse("## only h2", "a.md").title is None
    assert _parse("---\n\n# After a thematic break\n", "a.md").title == "After a thematic break"


def test_code_keeps_its_language() -> None:
    parsed = _parse("fn main() {}\n", "src/main.rs")
    assert (parsed.content_type, parsed.code_language, parsed.title) == ("text/x-code", "rust", None)
    assert parse(b"x = 1", "text/x-code", None).code_language is None


HTML = """<!DOCTYPE html>
<html><head><title> The   Manual </title>
<style>body { color: red }</style>
<script>document.write("<h1>injected</h1>")</script></head>
<body>
<h1>Manual</h1>
<p>Welcome&nbsp;to the <b>manual</b>.
   It has two sections.</p>
<noscript><p>Enable JavaScript</p></noscript>
<h2>Install</h2>
<ul><li>Download</li><li>Run <code>setup</code></li></ul>
<h3>From <em>source</em></h3>
<pre>make
  make install</pre>
<p># not a heading</p>
<table><tr><th>key</th><th>value</th></tr><tr><td>a</td><td>1</td></tr></table>
<template><p>hidden</p></template>
</body></html>
"""


def test_html_becomes_markdown_without_scripts_or_styles() -> None:
    parsed = parse(HTML.encode(), "text/html", "manual.html")
    assert parsed.title == "The Manual"
    assert parsed.text == (
        "# Manual\n\nWelcome\xa0to the manual. It has two sections.\n\n## Install\n\n- Download\n- Run setup\n\n"
        "### From source\n\n```\nmake\n  make install\n```\n\n\\# not a heading\n\nkey | value\na | 1\n"
    ).replace("\xa0", " ")
    for gone in ("color", "document.write", "injected", "Enable JavaScript", "hidden"):
        assert gone not in parsed.text


def test_html_title_falls_back_to_the_first_h1() -> None:
    assert html_to_markdown("<h2>Sub</h2><h1>First</h1><h1>Second</h1>")[1] == "First"
    assert html_to_markdown("<p>no headings</p>")[1] is None
    # An unclosed heading ends at the next block instead of swallowing the page.
    assert html_to_markdown("<h2>Open<p>Body text</p>")[0] == "## Open\n\nBody text\n"


def test_pdf_text_per_page_with_page_starts_and_title() -> None:
    parsed = parse(make_pdf(["First page line one\nline two", "Second page"], title="Annual Report"), "application/pdf")
    assert parsed.content_type == "application/pdf" and parsed.title == "Annual Report"
    assert parsed.text == "First page line one\nline two" + PAGE_BREAK + "Second page"
    assert parsed.page_starts == (0, len("First page line one\nline two" + PAGE_BREAK))


def test_pdf_without_text_is_empty_and_says_why() -> None:
    with pytest.raises(EmptyContent, match=r"'scan\.pdf' has no extractable text \(a scanned PDF needs OCR"):
        parse(make_pdf(["", ""]), "application/pdf", "scan.pdf")


def test_pdf_empty_page_keeps_page_numbers() -> None:
    parsed = parse(make_pdf(["one", "", "three"]), "application/pdf")
    assert parsed.text.split(PAGE_BREAK) == ["one", "", "three"]
    assert parsed.page_starts == (0, 3 + len(PAGE_BREAK), 3 + 2 * len(PAGE_BREAK))
    chunks = chunk_document(parsed, max_tokens=1, overlap_tokens=0)
    assert [(c.text, c.page) for c in chunks] == [("one", 1), ("three", 3)]


# Chunking ------------------------------------------------------------------------------------------------


def test_markdown_heading_paths() -> None:
    text = "# A\n\nalpha text\n\n## B\n\nbeta text\n\n### C\n\ngamma\n\n## D\n\ndelta\n\n# E\n\nepsilon\n"
    chunks = chunk_document(_parse(text, "a.md"), max_tokens=6, overlap_tokens=0)
    assert [(c.text, c.heading_path) for c in chunks] == [
        ("# A\n\nalpha text", ("A",)),
        ("## B\n\nbeta text", ("A", "B")),
        ("### C\n\ngamma", ("A", "B", "C")),
        ("## D\n\ndelta", ("A", "D")),
        ("# E\n\nepsilon", ("E",)),
    ]
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 3), (5, 7), (9, 11), (13, 15), (17, 19)]


def test_markdown_heading_detection() -> None:
    text = (
        "Top\n===\n\nSub\n---\n\n- item\n---\n\n```md\n# fenced\n~~~\n```\n"
        "    # indented code\n#no-space\n## Closed ##\n## [Link](http://x) and `code`\n#\n"
    )
    found = [(h.level, h.text) for h in markdown_headings(text)]
    assert found == [(1, "Top"), (2, "Sub"), (2, "Closed"), (2, "Link and code")]
    index = HeadingIndex(text)
    assert index.path_at(0) == ("Top",) and index.path_at(text.index("- item")) == ("Top", "Sub")


def test_line_ranges_with_non_ascii_text() -> None:
    paragraph = "Ünïcödé façade — 日本語のテキストです。Emoji 😀 count as one character each. "
    text = "# Überschrift\n\n" + "\n\n".join(paragraph * 3 for _ in range(6)) + "\n\n## Zweite 🎉\n\nEnde.\n"
    parsed = _parse(text, "doc.md")
    chunks = chunk_document(parsed, max_tokens=40, overlap_tokens=8)
    assert len(chunks) > 6
    _check_positions(parsed, chunks)
    assert chunks[-1].heading_path == ("Überschrift", "Zweite 🎉")
    assert chunks[-1].end_line == text.count("\n")


def test_splitter_offsets_are_characters_not_bytes() -> None:
    first = "Naïve café crème brûlée, 日本語 😀."
    text = first + "\n\n" + "Zweiter Absatz über Größe und Maß. " * 8
    parsed = Parsed(text=text, content_type="text/plain", code_language=None, title=None)
    chunks = chunk_document(parsed, max_tokens=30, overlap_tokens=0)
    assert chunks[0].text == first
    assert chunks[1].char_start == len(first) + 2 == 33  # in UTF-8 bytes it would be 47
    assert len(first.encode()) + 2 == 47
    _check_positions(parsed, chunks)


PROSE = " ".join(f"Sentence number {i} talks about memory, agents and retrieval in some detail." for i in range(60))


def test_prose_chunks_overlap_and_respect_max_tokens() -> None:
    parsed = _parse(PROSE, "notes.txt")
    chunks = chunk_document(parsed, max_tokens=50, overlap_tokens=15)
    assert len(chunks) >= 5
    _check_positions(parsed, chunks)
    for chunk, tokens in zip(chunks, count_tokens([c.text for c in chunks]), strict=True):
        assert chunk.token_count == tokens <= 50
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.char_start < before.char_end  # overlap
        assert before.char_start < after.char_start  # progress
        assert after.text.startswith(parsed.text[after.char_start : before.char_end])
    assert all(c.heading_path == () and c.page is None for c in chunks)


def test_without_overlap_chunks_tile_the_text() -> None:
    parsed = _parse(PROSE, "notes.txt")
    chunks = chunk_document(parsed, max_tokens=50, overlap_tokens=0)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert parsed.text[before.char_end : after.char_start].strip() == ""


def test_prose_is_cut_at_paragraphs_before_sentences() -> None:
    paragraphs = [f"Paragraph {i} has a first sentence. And a second one here." for i in range(4)]
    chunks = chunk_document(_parse("\n\n".join(paragraphs), "a.txt"), max_tokens=30, overlap_tokens=0)
    assert [c.text for c in chunks] == ["\n\n".join(paragraphs[:2]), "\n\n".join(paragraphs[2:])]


def test_default_sizes_fit_the_embedder_window() -> None:
    parsed = _parse("\n\n".join([PROSE] * 3), "notes.txt")
    chunks = chunk_document(parsed)
    assert max(c.token_count for c in chunks) <= 200 < 256 - 2
    assert chunks[0].token_count > 150  # and the window is used


def test_invalid_sizes_are_refused() -> None:
    parsed = _parse("text", "a.txt")
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_document(parsed, max_tokens=0, overlap_tokens=0)
    with pytest.raises(ValueError, match="overlap_tokens"):
        chunk_document(parsed, max_tokens=10, overlap_tokens=10)


def test_tokenizer_is_the_embedders() -> None:
    from tokenizers import BertWordPieceTokenizer

    from engramdb.providers.minilm import model_files

    reference = BertWordPieceTokenizer(str(model_files()[1]), lowercase=True, strip_accents=None)
    text = "Engram remembers: naïve café, 日本語, emoji 😀 and CamelCaseWords."
    assert minilm_tokenizer().encode(text).ids == reference.encode(text).ids
    assert minilm_tokenizer() is minilm_tokenizer()
    assert count_tokens(["hello world", ""]) == [2, 0]


PYTHON = '''"""Module docstring."""

import os

LIMIT = 10


@decorator
def first(a, b):
    """Add two numbers and return the result of the addition."""
    total = a + b
    return total


class Store:
    """A store of things with several methods, long enough to need its own chunks."""

    def get(self, key):
        value = self.data.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def put(self, key, value):
        self.data[key] = value
        self.log.append(("put", key, value))
        return None


async def last():
    return await something_else_entirely(with_some, arguments=True)
'''


def test_python_is_cut_at_definitions() -> None:
    parsed = _parse(PYTHON, "store.py")
    chunks = chunk_document(parsed, max_tokens=40, overlap_tokens=0)
    _check_positions(parsed, chunks)
    starts = {c.text.split("\n", 1)[0]: (c.heading_path, c.start_line, c.end_line) for c in chunks}
    assert starts["@decorator"] == (("def first",), 8, 12)
    assert starts["def get(self, key):"] == (("class Store", "def get"), 18, 22)
    assert starts["def put(self, key, value):"] == (("class Store", "def put"), 24, 27)
    assert starts["async def last():"] == (("async def last",), 30, 31)
    assert chunks[0].heading_path == ()


def test_python_that_does_not_parse_falls_back_to_top_level_patterns() -> None:
    text = "def broken(:\n    pass\n\n\nclass Fine:\n    x = 1\n"
    chunks = chunk_document(_parse(text, "bad.py"), max_tokens=8, overlap_tokens=0)
    assert [(c.start_line, c.end_line, c.heading_path) for c in chunks] == [
        (1, 2, ("def broken",)),
        (5, 6, ("class Fine",)),
    ]


LANGUAGES = {
    "app.js": (
        "import x from 'y';\n\n// Adds two numbers together and returns them.\n"
        "export async function add(a, b) {\n  const total = a + b;\n  return total;\n}\n\n"
        "export default class Widget extends Base {\n  render() { return 1; }\n"
        "  update(props) { this.props = props; return this; }\n}\n",
        [(1, ()), (4, ("function add",)), (9, ("class Widget",))],
    ),
    "main.go": (
        'package main\n\nimport "fmt"\n\ntype Server struct {\n\tport int\n\thost string\n}\n\n'
        "func (s *Server) Start() error {\n\tfmt.Println(s.host, s.port)\n\treturn nil\n}\n",
        [(1, ()), (10, ("func Server.Start",))],
    ),
    "lib.rs": (
        "use std::fmt;\n\n#[derive(Debug)]\npub struct Point<T> {\n    x: T,\n    y: T,\n}\n\n"
        "impl<T> fmt::Display for Point<T> {\n    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {\n"
        '        write!(f, "point")\n    }\n}\n',
        [(1, ()), (4, ("struct Point",)), (9, ("impl fmt::Display for Point",))],
    ),
    "A.java": (
        "package a;\n\nimport java.util.List;\n\n@Deprecated\npublic final class A {\n"
        '    void m() { System.out.println("hello"); }\n}\n',
        [(1, ()), (5, ("class A",))],
    ),
}


@pytest.mark.parametrize("filename", sorted(LANGUAGES))
def test_top_level_definitions_in_other_languages(filename: str) -> None:
    source, expected = LANGUAGES[filename]
    parsed = _parse(source, filename)
    chunks = chunk_document(parsed, max_tokens=30, overlap_tokens=0)
    _check_positions(parsed, chunks)
    got = [(c.start_line, c.heading_path) for c in chunks]
    assert all(pair in got for pair in expected), got
    assert all(path == () for line, path in got if line < expected[1][0])


def test_a_lone_decorator_or_attribute_belongs_to_what_follows() -> None:
    from engramdb.providers.documents.outline import DefinitionIndex

    rust = DefinitionIndex("use a;\n\n#[derive(Debug)]\n// doc\n\npub enum E {\n    A,\n}\n", "rust")
    assert [rust.path_at(line) for line in (1, 3, 4, 6, 7)] == [(), *[("enum E",)] * 4]
    python = DefinitionIndex("x = 1\n\n# comment\n@dec\ndef f():\n    pass\n", "python")
    assert [python.path_at(line) for line in (1, 3, 4, 6)] == [(), *[("def f",)] * 3]


def test_python_paths_nest_and_unwind() -> None:
    from engramdb.providers.documents.outline import DefinitionIndex

    source = (
        "class A:\n    def m(self):\n        def inner():\n            pass\n        return inner\n    x = 1\ny = 2\n"
    )
    index = DefinitionIndex(source, "python")
    assert [index.path_at(line) for line in range(1, 8)] == [
        ("class A",),
        ("class A", "def m"),
        ("class A", "def m", "def inner"),
        ("class A", "def m", "def inner"),
        ("class A", "def m"),
        ("class A",),
        (),
    ]


def test_code_without_a_grammar_is_split_as_text() -> None:
    text = "\n\n".join(f"[section{i}]\nkey = {i}\nname = 'value number {i}'" for i in range(20))
    parsed = _parse(text, "config.toml")
    assert parsed.code_language == "toml"
    chunks = chunk_document(parsed, max_tokens=40, overlap_tokens=0)
    _check_positions(parsed, chunks)
    assert all(c.text.startswith("[section") and c.heading_path == () for c in chunks)


def test_html_chunks_have_heading_paths() -> None:
    parsed = parse(HTML.encode(), "text/html", "manual.html")
    chunks = chunk_document(parsed, max_tokens=12, overlap_tokens=0)
    _check_positions(parsed, chunks)
    paths = {c.heading_path for c in chunks}
    assert ("Manual", "Install", "From source") in paths and ("Manual", "Install") in paths
    assert not any("document.write" in c.text for c in chunks)


def test_pdf_chunks_know_their_page() -> None:
    pages = [" ".join(f"Page {p} sentence {i} about storage." for i in range(12)) for p in (1, 2)]
    parsed = parse(make_pdf(pages), "application/pdf", "report.pdf")
    chunks = chunk_document(parsed, max_tokens=40, overlap_tokens=5)
    _check_positions(parsed, chunks)
    assert [c.page for c in chunks] == sorted(c.page or 0 for c in chunks)
    assert {c.page for c in chunks} == {1, 2}
    for chunk in chunks:
        assert f"Page {chunk.page}" in chunk.text
    assert all("\f" not in c.text for c in chunks)  # the page break is the strongest cut


def test_a_short_two_page_pdf_is_cut_at_the_page_and_cited_where_the_text_is() -> None:
    # Regression: both pages fit one 200-token chunk, which was cited "page 1" and held the "\f" page break.
    pdf = make_pdf(["Quarterly revenue grew strongly.", "Costs fell by 12% in the second half."])
    parsed = parse(pdf, "application/pdf", "report.pdf")
    chunks = chunk_document(parsed)
    _check_positions(parsed, chunks)
    assert [(c.text, c.page) for c in chunks] == [
        ("Quarterly revenue grew strongly.", 1),
        ("Costs fell by 12% in the second half.", 2),
    ]
    answer = next(c for c in chunks if "Costs fell" in c.text)
    assert citation("report.pdf", None, answer) == "report.pdf, page 2"
    assert "\f" not in parsed.text and all("\f" not in c.text for c in chunks)


def test_form_feeds_are_not_kept_in_text() -> None:
    assert parse(b"page one\n\f\npage two\f", "text/plain", "rfc.txt").text == "page one\n\npage two"
    assert "\f" not in parse(make_pdf(["a\fb", "c"]), "application/pdf").text


def _only_headings(chunk: Chunk) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in chunk.text.split("\n"))


HANDBOOK = (
    "# Handbook\n\n## Install\n\n"
    + " ".join(f"Step {i} explains how the installer verifies checksums before unpacking." for i in range(25))
    + "\n\n## Usage\n\nRun it.\n"
)


def test_a_heading_is_never_a_chunk_of_its_own() -> None:
    # Regression: "# Handbook" and "## Install" were chunks of their own (and ranked as hits), because the
    # first paragraph did not fit beside them; and "## Usage" was glued to the end of Install's text.
    parsed = _parse(HANDBOOK, "handbook.md")
    chunks = chunk_document(parsed)
    _check_positions(parsed, chunks)
    assert not any(_only_headings(c) for c in chunks)
    assert chunks[0].text.startswith("# Handbook\n\n## Install\n\nStep 0 ")  # the headings fit: kept with it
    assert [c.heading_path for c in chunks] == [("Handbook", "Install")] * 3 + [("Handbook", "Usage")]
    assert chunks[-1].text == "## Usage\n\nRun it."
    assert [c.token_count for c in chunks] == count_tokens([c.text for c in chunks])
    assert max(c.token_count for c in chunks) <= 200


def test_a_heading_that_does_not_fit_is_left_to_the_heading_path() -> None:
    text = "# Guide\n\nIntro text here.\n\n## Install\n\nRun pip install engram.\n\n## Usage\n\nCall the thing.\n"
    chunks = chunk_document(_parse(text, "guide.md"), max_tokens=8, overlap_tokens=0)
    assert [(c.text, c.heading_path) for c in chunks] == [
        ("# Guide\n\nIntro text here.", ("Guide",)),
        ("Run pip install engram.", ("Guide", "Install")),  # "## Install" + this would be 9 tokens
        ("## Usage\n\nCall the thing.", ("Guide", "Usage")),
    ]
    embedded = chunk_embedding_text("Guide", "guide.md", chunks[1].heading_path, chunks[1].text)
    assert embedded == "guide.md › Guide › Install\nRun pip install engram."


def test_a_section_appended_at_the_end_is_cited_under_its_own_heading() -> None:
    # Regression: the appendix fit into the intro's chunk and was cited under "Guide" (lines 1–7).
    text = "# Guide\n\n" + "Intro text about the guide goes here. " * 20 + "\n\n## Appendix\n\nThe port is 8080.\n"
    parsed = _parse(text, "guide.md")
    chunks = chunk_document(parsed)
    _check_positions(parsed, chunks)
    last = next(c for c in chunks if "8080" in c.text)
    assert last.heading_path == ("Guide", "Appendix") and "Intro" not in last.text
    assert citation("guide.md", parsed.title, last) == "guide.md, section Appendix, lines 5–7"
    assert all("Appendix" not in c.text for c in chunks if c is not last)


def test_markdown_sections() -> None:
    text = "Preamble.\n\n# A\n\n## B\n\nunder b\n\nC\n---\n\nunder c\n\n# D\n"
    sections = [(text[s.start : s.body], text[s.body : s.end], s.path) for s in markdown_sections(text)]
    assert sections == [
        ("", "Preamble.\n\n", ()),
        ("# A\n\n## B", "\n\nunder b\n\n", ("A", "B")),  # a run of headings opens one section
        ("C\n---", "\n\nunder c\n\n", ("A", "C")),
        ("# D", "\n", ("D",)),
    ]
    assert markdown_sections("no headings") == [markdown_sections("no headings")[0]]
    # A document of nothing but headings still has its text chunked.
    assert [c.text for c in chunk_document(_parse("# Only\n\n## Headings\n", "a.md"))] == ["# Only\n\n## Headings"]
    # A heading that ends the document, with nothing under it, is no chunk of its own.
    assert [c.text for c in chunk_document(_parse("# T\n\ntext\n\n## Empty\n", "a.md"))] == ["# T\n\ntext"]


def test_chunking_is_deterministic_and_drops_blank_pieces() -> None:
    parsed = _parse("# T\n\n" + "\n\n\n\n".join([PROSE[:300]] * 5) + "\n\n   \n", "a.md")
    first = chunk_document(parsed, max_tokens=30, overlap_tokens=5)
    assert first == chunk_document(parsed, max_tokens=30, overlap_tokens=5)
    assert all(c.text.strip() for c in first)


# Embedding text and citations ----------------------------------------------------------------------------


def test_chunk_embedding_text() -> None:
    assert chunk_embedding_text("Engram", "README.md", ("Engram", "Install", "From source"), "pip install") == (
        "README.md › Engram › Install › From source\npip install"
    )
    assert chunk_embedding_text("Guide", "guide.md", ("Setup",), "x") == "guide.md › Guide › Setup\nx"
    assert chunk_embedding_text("Report", None, (), "x") == "Report\nx"
    assert chunk_embedding_text(None, None, (), "just text") == "just text"
    assert chunk_embedding_text(None, "app.py", ("class Store", "def get"), "x") == "app.py › class Store › def get\nx"


def test_chunk_embedding_text_keeps_the_context_line_short() -> None:
    deep = tuple(f"Section number {i} with a rather long name" for i in range(8))
    context = chunk_embedding_text(None, "docs/a.md", deep, "body").split("\n")[0]
    assert len(context) <= 160
    assert context.startswith("docs/a.md › … › ") and context.endswith(deep[-1])
    long = chunk_embedding_text(None, "a.md", ("x" * 200,), "body").split("\n")[0]
    assert long == "a.md › " + "x" * 59 + "…"


def _chunk(path: tuple[str, ...] = (), lines: tuple[int, int] = (12, 30), page: int | None = None) -> Chunk:
    return Chunk(0, "t", 0, 1, lines[0], lines[1], path, page, 1)


def test_citation() -> None:
    assert citation("README.md", "Engram", _chunk(("Engram", "Install", "From source"))) == (
        "README.md, section Install › From source, lines 12–30"
    )
    assert citation("README.md", None, _chunk(("Install",))) == "README.md, section Install, lines 12–30"
    assert citation("app.py", None, _chunk(("class Store", "def get"), (40, 40))) == (
        "app.py, class Store › def get, line 40"
    )
    assert citation("report.pdf", "Annual Report", _chunk(page=3)) == "report.pdf, page 3"
    assert citation(None, "Annual Report", _chunk(page=1)) == "Annual Report, page 1"
    assert citation(None, None, _chunk()) == "document, lines 12–30"


def test_citation_of_a_real_chunk() -> None:
    text = "# Engram\n\nIntro.\n\n## Install\n\n" + "\n".join(f"Step {i}: do the thing." for i in range(1, 8))
    parsed = _parse(text, "README.md")
    last = chunk_document(parsed, max_tokens=200, overlap_tokens=30)[-1]
    assert citation("README.md", parsed.title, last) == "README.md, section Install, lines 5–13"
    small = chunk_document(parsed, max_tokens=40, overlap_tokens=0)
    assert citation("README.md", parsed.title, small[-1]).startswith("README.md, section Install, lines ")


@pytest.mark.parametrize("source", ["# just a comment", "#!/usr/bin/env python\n# only comments\n"])
def test_code_with_nothing_but_comments_is_one_chunk(source: str) -> None:
    from engramdb.providers.documents import chunk_document, parse

    parsed = parse(source.encode(), "text/x-code", "pkg/__init__.py")
    (only,) = chunk_document(parsed)
    assert only.heading_path == () and only.start_line == 1


def test_a_long_text_reaches_the_splitter_in_windows_cut_at_breaks() -> None:
    size = chunking.WINDOW_CHARS
    sentence = "Every window ends at a break. "
    text = "x" + sentence * (3 * size // len(sentence))
    ranges = chunking._windows(text, 1, len(text))
    assert ranges[0][0] == 1 and ranges[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))  # contiguous, nothing lost
    assert all(0 < end - start <= size for start, end in ranges)
    assert all(text[end - 2 : end] == ". " for _, end in ranges[:-1])  # at a sentence's end, not mid-word
    unbroken = "y" * (size + 10)  # no break at all: cut at the window's size
    assert chunking._windows(unbroken, 0, len(unbroken)) == [(0, size), (size, size + 10)]
    # One line of words, no sentence ends: every word is in some chunk, and no chunk is over its size.
    line = " ".join(f"w{i}" for i in range(3 * size // 6))
    chunks = chunk_document(parse(line.encode(), "text/plain", "line.txt"))
    assert all(c.token_count <= 200 for c in chunks)
    covered = {w for c in chunks for w in c.text.split()}
    assert covered == set(line.split())

"""The export format covers the schema: every tenant table is exported or deliberately left out, and every
column of an exported table is in its records (a new table or column cannot silently miss the export)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest

from engramdb import limits
from engramdb.errors import PayloadTooLarge
from engramdb.schemas.export import END_KIND, ExportEnd
from engramdb.services.governance import import_
from engramdb.services.governance.export import KINDS, KINDS_BY_NAME, NOT_EXPORTED, VECTOR_COLUMNS, columns

_TENANT_TABLES = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
"""


def test_every_tenant_table_is_exported_or_left_out_on_purpose(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = {r[0] for r in conn.execute(_TENANT_TABLES)}
    exported = {k.table.name for k in KINDS}
    assert exported <= tables
    missing = tables - exported - set(NOT_EXPORTED)
    assert not missing, (
        f"export these tables (services/governance/export.py KINDS) or say why not (NOT_EXPORTED): {missing}"
    )
    assert not exported & set(NOT_EXPORTED)


def test_every_column_of_an_exported_table_is_written(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for kind in KINDS:
            stored = {
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND table_name = %s",
                    (kind.table.name,),
                )
            }
            written = {c.name for c in columns(kind)}
            assert written == stored - {"org_id", "search_tsv"}, kind.name
            slim = {c.name for c in columns(kind, include_embeddings=False)}
            assert slim == written - VECTOR_COLUMNS


def test_kinds_are_in_dependency_order() -> None:
    names = [k.name for k in KINDS]
    for child, parent in (
        ("user", "team"),
        ("agent", "user"),
        ("session", "agent"),
        ("message", "session"),
        ("memory", "session"),
        ("memory_history", "memory"),
        ("fact", "entity"),
        ("memory_entity", "entity"),
        ("memory_entity", "memory"),
        ("narrative", "user"),
        ("document", "repository"),
        ("chunk", "document"),
    ):
        assert names.index(parent) < names.index(child), (parent, child)


async def test_lines_are_split_across_chunks_of_any_size() -> None:
    body = b'{"a": 1}\n\n{"b": "x\\u00e9y"}\r\n' + b'{"c": "' + b"z" * 5000 + b'"}\n{"d": 4}'
    expected = [(n, line) for n, line in enumerate(body.split(b"\n"), start=1) if line.strip()]
    for size in (1, 3, 7, 64, 4096, len(body)):

        async def chunks(size: int = size) -> AsyncIterator[bytes]:
            for i in range(0, len(body), size):
                yield body[i : i + size]

        assert [item async for item in import_._lines(chunks())] == expected, size


def test_the_end_record_is_no_kind_of_row() -> None:
    assert END_KIND not in KINDS_BY_NAME
    assert ExportEnd.model_validate({"kind": "end", "records": 0}).records == 0
    for bad in (
        {"kind": "end"},
        {"kind": "end", "records": -1},
        {"kind": "end", "records": True},
        {"kind": "end", "records": "1"},
    ):
        with pytest.raises(ValueError):
            ExportEnd.model_validate(bad)


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


async def test_a_line_over_the_line_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_IMPORT_LINE_BYTES", 10)
    fits = b"0123456789\n" + b"abcdefghij"
    for size in (1, 4, 11, len(fits)):
        assert [item async for item in import_._lines(_chunks(fits, size))] == [(1, fits[:10]), (2, fits[11:])]
    for body, line in ((b"0123456789A\n", 1), (b"ok\n\n0123456789A", 3), (b"ok\n" + b"x" * 11, 2)):
        for size in (1, 3, len(body)):
            with pytest.raises(PayloadTooLarge) as caught:
                _ = [item async for item in import_._lines(_chunks(body, size))]
            assert caught.value.detail.startswith(f"line {line}: the line is over the 10-byte limit"), body

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(10_000):
            yield b"x" * 3
        raise AssertionError("read past the line limit")  # pragma: no cover

    with pytest.raises(PayloadTooLarge):
        _ = [item async for item in import_._lines(endless())]


def test_the_line_limit_holds_any_document() -> None:
    """A document's text is at most MAX_DOCUMENT_BYTES characters, each escaped in at most 6 bytes."""
    assert limits.MAX_IMPORT_LINE_BYTES >= 6 * limits.MAX_DOCUMENT_BYTES + 1024 * 1024
    assert limits.MAX_IMPORT_LINE_BYTES <= limits.MAX_IMPORT_BYTES


def test_timestamps_are_held_to_what_a_read_can_return() -> None:
    assert import_._timestamp("0001-01-01T00:00:00Z") == datetime(1, 1, 1, tzinfo=UTC)
    assert import_._timestamp("2024-03-01T10:00:00") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert import_._timestamp("9999-12-31T23:59:59.999999+00:00") == datetime.max.replace(tzinfo=UTC)
    assert import_._timestamp("1850-06-01T00:00:00+01:00").year == 1850  # a historical fact's valid_from
    for value in ("0001-01-01T00:00:00+05:00", "0001-01-01T04:59:59+05:00", "9999-12-31T23:00:00-05:00"):
        with pytest.raises(ValueError, match="out of range"):
            import_._timestamp(value)

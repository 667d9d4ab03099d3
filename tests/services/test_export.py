"""The export format covers the schema: every tenant table is exported or deliberately left out, and every
column of an exported table is in its records (a new table or column cannot silently miss the export)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg

from engramdb.services import import_
from engramdb.services.export import KINDS, NOT_EXPORTED, VECTOR_COLUMNS, columns

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
    assert not missing, f"export these tables (services/export.py KINDS) or say why not (NOT_EXPORTED): {missing}"
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

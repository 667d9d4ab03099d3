from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from engramdb.storage.partitions import ensure_partitions


def test_ensure_partitions_is_idempotent_and_spans_year_ends(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        created = ensure_partitions(conn, now=datetime(2030, 11, 5, tzinfo=UTC))
        assert created == [
            f"{t}_p{m}"
            for t in ("message", "audit_log", "memory_access_log", "agent_message")
            for m in ("2030_11", "2030_12", "2031_01", "2031_02")
        ]
        assert ensure_partitions(conn, now=datetime(2030, 11, 5, tzinfo=UTC)) == []


def test_rows_in_default_partition_block_only_that_month(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO organization (org_id, name) VALUES ('00000000-0000-7000-8000-000000000001', 'p')")
        conn.execute(
            "INSERT INTO audit_log (org_id, id, actor, action, entity_type, created_at) VALUES "
            "('00000000-0000-7000-8000-000000000001', gen_random_uuid(), 't', 'x', 'y', '2040-03-10')"
        )
        created = ensure_partitions(conn, now=datetime(2040, 3, 1, tzinfo=UTC))
        assert "audit_log_p2040_03" not in created  # its rows stay, correct, in the default partition
        assert "message_p2040_03" in created


def test_search_vectors_stay_in_the_row_in_every_partition(database_url: str) -> None:
    """search_tsv is STORAGE MAIN (migration 0022) on memories and on every message partition, those made
    later included, so the keyword retriever never reads it out of line."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        ensure_partitions(conn, now=datetime(2033, 6, 1, tzinfo=UTC))
        rows = conn.execute(
            "SELECT c.relname, a.attstorage FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE a.attname = 'search_tsv' AND c.relkind IN ('r', 'p') "
            "AND (c.relname IN ('memory', 'message') OR c.relname LIKE 'message\\_%')"
        ).fetchall()
    storage = dict(rows)
    assert "message_p2033_06" in storage and "message_default" in storage and "memory" in storage
    assert set(storage.values()) == {"m"}, storage

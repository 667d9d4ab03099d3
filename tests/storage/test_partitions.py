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

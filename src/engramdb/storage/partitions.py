"""Monthly range partitions for the time-ordered tables (``message``, ``audit_log``, ``memory_access_log``,
``agent_message``).

Each table has a DEFAULT partition, so a row is never refused for want of a partition; the monthly
parts keep recent data in small, prunable tables. ``ensure_partitions`` runs at migrate and at start-up.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

PARTITIONED_TABLES = ("message", "audit_log", "memory_access_log", "agent_message")
MONTHS_AHEAD = 3
_log = logging.getLogger(__name__)


def _month_start(year: int, month: int) -> date:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return date(year, month, 1)


def ensure_partitions(conn: psycopg.Connection, *, now: datetime | None = None) -> list[str]:
    """Create this month's and the next ``MONTHS_AHEAD`` months' partitions; return the ones created."""
    now = now or datetime.now(UTC)
    created: list[str] = []
    for table in PARTITIONED_TABLES:
        for offset in range(MONTHS_AHEAD + 1):
            start = _month_start(now.year, now.month + offset)
            end = _month_start(start.year, start.month + 1)
            name = f"{table}_p{start:%Y_%m}"
            exists = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
            if exists and exists[0] is not None:
                continue
            stmt = sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(name), sql.Identifier(table), sql.Literal(start), sql.Literal(end)
            )
            try:
                conn.execute(stmt)
                created.append(name)
            except pg_errors.DuplicateTable:
                pass  # another process made it
            except pg_errors.CheckViolation:
                # Rows for that month already sit in the default partition; they stay there, correct
                # but unpruned. Logged so an operator can move them in a maintenance window.
                _log.warning("partition %s not created: the default partition holds rows of that range", name)
    return created

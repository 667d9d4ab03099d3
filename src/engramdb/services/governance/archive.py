"""The logs' way out: audit-log and access-log rows are written to JSON Lines files under
``ENGRAM_ARCHIVE_DIR`` (``<org id>/<target>/…jsonl``, one row per line, columns by their database names)
before retention removes them, and whole monthly partitions are dropped rather than emptied row by row.

**Partitions are shared by every organization**, so one is dropped only when it lies entirely before the
cut-off of *every* organization with rows in it: each must have an enabled delete policy on that log whose
cut-off is past the partition's end, and no active legal hold. Then each organization's rows are exported
to ``<org id>/<target>/<partition>.jsonl`` (written and synced first), and the partition is detached and
dropped (waiting at most ``LOCK_TIMEOUT`` for its lock; a busy table is left for the next sweep). Rows
the drop cannot take (in the default partition, or in a month another organization still keeps) are
exported and deleted by each organization's own run, in batches (``<org id>/<target>/run-<run id>.jsonl``).
Only the periodic sweep drops partitions; a run an admin starts deletes its organization's rows only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.services.core.runtime import Runtime
from engramdb.services.governance.steps import TARGETS, Step
from engramdb.storage import tables as t

LOCK_TIMEOUT = "5s"
_BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")
_log = logging.getLogger(__name__)


class Writer:
    """Appends rows to one JSON Lines file, synced to disk before the caller deletes them."""

    def __init__(self, root: Path, org_id: uuid.UUID, target: str, name: str, *, fresh: bool = False) -> None:
        self.path = root / str(org_id) / target / f"{name}.jsonl"
        self._mode = "w" if fresh else "a"

    def _write(self, rows: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self.path.open(self._mode, encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(to_jsonable_python(row), ensure_ascii=False, separators=(",", ":")) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self._mode = "a"

    async def write(self, rows: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(self._write, rows)


class RunExport:
    """A run's exports: one file per log it deletes from."""

    def __init__(self, rt: Runtime, org_id: uuid.UUID, run_id: uuid.UUID) -> None:
        self._root, self._org, self._run = rt.settings.archive_path, org_id, run_id
        self._writers: dict[str, Writer] = {}

    async def __call__(self, step: Step, rows: list[dict[str, Any]]) -> None:
        name = step.target.name
        if name not in self._writers:
            self._writers[name] = Writer(self._root, self._org, name, f"run-{self._run}")
        await self._writers[name].write(rows)


# --- dropping whole partitions (the periodic sweep) ----------------------------------------------------


async def _cutoffs(conn: AsyncConnection, now: datetime) -> dict[str, dict[uuid.UUID, datetime]]:
    """Per log, the organizations that let it go, with how far: the latest cut-off of their enabled delete
    policies on it. An organization under any active hold lets nothing go."""
    p, h = t.retention_policy, t.legal_hold
    held = set((await conn.execute(select(h.c.org_id).where(h.c.released_at.is_(None)).distinct())).scalars())
    rows = (
        await conn.execute(
            select(p.c.org_id, p.c.target, func.min(p.c.after_days).label("days"))
            .where(p.c.enabled, p.c.action == "delete", p.c.target.in_(("audit_log", "access_log")))
            .group_by(p.c.org_id, p.c.target)
        )
    ).all()
    cutoffs: dict[str, dict[uuid.UUID, datetime]] = defaultdict(dict)
    for row in rows:
        if row.org_id not in held:
            cutoffs[row.target][row.org_id] = now - timedelta(days=row.days)
    return cutoffs


async def _partitions(conn: AsyncConnection, table: Table) -> list[tuple[str, datetime, datetime]]:
    """The table's ranged partitions (not the default one), with their bounds, oldest first."""
    rows = await conn.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:parent AS regclass)"
        ),
        {"parent": table.name},
    )
    found = []
    for name, bound in rows.all():
        match = _BOUNDS.search(bound or "")
        if match:
            low, high = (
                await conn.execute(
                    text("SELECT CAST(:a AS timestamptz), CAST(:b AS timestamptz)"), {"a": match[1], "b": match[2]}
                )
            ).one()
            found.append((str(name), low, high))
    return sorted(found, key=lambda p: p[1])


async def drop_partitions(rt: Runtime) -> dict[uuid.UUID, list[tuple[Step, int]]]:
    """Export and drop every log partition that lies entirely before the cut-off of every organization
    with rows in it. Returns, per organization, what went: a step and its row count per partition."""
    dropped: dict[uuid.UUID, list[tuple[Step, int]]] = defaultdict(list)
    async with rt.db.system() as conn:
        now: datetime = (await conn.execute(select(func.now()))).scalar_one()
        cutoffs = await _cutoffs(conn, now)
    for name, covered in cutoffs.items():
        target = TARGETS[name]
        table, column = target.table, target.table.c[target.stored]
        async with rt.db.system() as conn:
            parts = await _partitions(conn, table)
        for part, low, high in parts:
            if high > max(covered.values()):
                break
            async with rt.db.system() as conn:
                await conn.execute(text("SET LOCAL statement_timeout = 0"))
                per_org: dict[uuid.UUID, int] = dict(
                    (
                        await conn.execute(
                            select(table.c.org_id, func.count())
                            .where(column >= low, column < high)
                            .group_by(table.c.org_id)
                        )
                    ).all()
                )
            if any(org not in covered or covered[org] < high for org in per_org):
                continue  # an organization still keeps (or holds) this month: its rows stay
            for org in per_org:
                await _export(
                    rt, table, column, org, low, high, Writer(rt.settings.archive_path, org, name, part, fresh=True)
                )
            if not await _drop(rt, table, part, sum(per_org.values())):
                continue
            step = Step(target, "delete", f"partition {part}", high)
            for org, rows in per_org.items():
                dropped[org].append((step, rows))
            _log.info("retention dropped partition %s (%d rows exported)", part, sum(per_org.values()))
    return dropped


async def _export(
    rt: Runtime, table: Table, column: Any, org_id: uuid.UUID, low: datetime, high: datetime, writer: Writer
) -> None:
    query = (
        select(table)
        .where(table.c.org_id == org_id, column >= low, column < high)
        .order_by(column, table.c.id)
        .execution_options(yield_per=rt.settings.retention_batch_rows)
    )
    async with rt.db.system() as conn:
        await conn.execute(text("SET LOCAL statement_timeout = 0"))
        result = await conn.stream(query)
        async for rows in result.mappings().partitions():
            await writer.write([dict(r) for r in rows])


async def _drop(rt: Runtime, table: Table, part: str, exported: int) -> bool:
    """Detach and drop ``part`` if it still holds exactly the rows exported; False (nothing dropped) when
    its lock is not had within ``LOCK_TIMEOUT`` or a row came meanwhile."""
    quoted = '"' + part.replace('"', '""') + '"'
    try:
        async with rt.db.system() as conn:
            await conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            await conn.execute(text(f"ALTER TABLE {table.name} DETACH PARTITION {quoted}"))
            rows = await conn.scalar(text(f"SELECT count(*) FROM {quoted}"))
            if rows != exported:
                raise _Changed(f"partition {part} holds {rows} rows, {exported} were exported")
            await conn.execute(text(f"DROP TABLE {quoted}"))
    except Exception as exc:  # a lock not had in time (a 503 of ours), or rows that came meanwhile
        _log.warning("retention kept partition %s for the next sweep: %s", part, exc)
        return False
    return True


class _Changed(Exception):
    """The partition changed between its export and its drop."""

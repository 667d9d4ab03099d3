"""An organization's usage (``GET /v1/usage``): jobs and LLM tokens (``job_usage``), API requests per route
class (the daily tally the rate limiter keeps, ``services.tenancy.quotas``) and what it stores.

Per-organization figures live here, not in ``/metrics``: a series per tenant would grow without bound.
Every figure is a cheap read: rows are counted on each table's ``(org_id, …)`` primary key; bytes are
estimated as those rows times the table's average row size (its size on disk, indexes and TOAST
included, over the planner's row estimate), since summing the rows' own sizes would read them all.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select, text

from engramdb.schemas.jobs import RequestUsage, TableUsage, Usage, UsageRow
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.database import Database

j = t.job

# What an organization stores, by the name usage shows: (name, table).
STORED = (
    ("sessions", t.session),
    ("messages", t.message),
    ("memories", t.memory),
    ("memory_history", t.memory_history),
    ("facts", t.fact),
    ("entities", t.entity),
    ("documents", t.document),
    ("chunks", t.chunk),
    ("jobs", t.job),
    ("webhook_deliveries", t.webhook_delivery),
    ("audit_log", t.audit_log),
)

# A table's size and row estimate, its partitions' summed (a plain table is its own only leaf).
_TABLE_SIZE = text(
    """SELECT coalesce(sum(pg_total_relation_size(p.relid)), 0) AS bytes,
              coalesce(sum(greatest(c.reltuples, 0)), 0) AS tuples
         FROM pg_partition_tree(CAST(:table AS regclass)) p JOIN pg_class c ON c.oid = p.relid
        WHERE p.isleaf"""
)


async def job_usage(db: Database, caller: Caller, *, since: datetime | None, until: datetime | None) -> Usage:
    """Jobs and LLM tokens per kind and provider (admin)."""
    caller.require("admin")
    conds: list[ColumnElement[bool]] = [j.c.org_id == caller.org_id]
    if since is not None:
        conds.append(j.c.created_at >= since)
    if until is not None:
        conds.append(j.c.created_at < until)
    query = (
        select(
            j.c.kind,
            j.c.provider,
            func.count().label("jobs"),
            func.coalesce(func.sum(j.c.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(j.c.completion_tokens), 0).label("completion_tokens"),
            func.coalesce(func.sum(j.c.llm_calls), 0).label("llm_calls"),
        )
        .where(*conds)
        .group_by(j.c.kind, j.c.provider)
        .order_by(j.c.kind, j.c.provider)
    )
    async with db.tenant(caller.org_id) as conn:
        rows = (await conn.execute(query)).mappings().all()
    return Usage(since=since, until=until, data=[UsageRow.model_validate(dict(r)) for r in rows])


async def report(db: Database, caller: Caller, *, since: datetime | None, until: datetime | None) -> Usage:
    """Jobs, tokens, requests and storage of the caller's organization (admin)."""
    usage = await job_usage(db, caller, since=since, until=until)
    tally = t.request_tally
    conds = [tally.c.org_id == caller.org_id]
    if since is not None:
        conds.append(tally.c.day >= since.date())
    if until is not None:
        conds.append(tally.c.day <= until.date())
    requests_query = (
        select(
            tally.c.route_class,
            func.sum(tally.c.requests).label("requests"),
            func.sum(tally.c.refused).label("refused"),
        )
        .where(*conds)
        .group_by(tally.c.route_class)
        .order_by(tally.c.route_class)
    )
    counts = [
        select(func.count()).select_from(table).where(table.c.org_id == caller.org_id).scalar_subquery().label(name)
        for name, table in STORED
    ]
    async with db.tenant(caller.org_id) as conn:
        requests = [
            RequestUsage(route_class=r["route_class"], requests=int(r["requests"]), refused=int(r["refused"]))
            for r in (await conn.execute(requests_query)).mappings()
        ]
        rows = (await conn.execute(select(*counts))).mappings().one()
        storage = []
        for name, table in STORED:
            mine = int(rows[name])
            size = (await conn.execute(_TABLE_SIZE, {"table": table.name})).mappings().one() if mine else None
            storage.append(TableUsage(table=name, rows=mine, bytes=_estimate(mine, size)))
    return usage.model_copy(
        update={"requests": requests, "storage": storage, "storage_bytes": sum(s.bytes for s in storage)}
    )


def _estimate(rows: int, size: object) -> int:
    if not rows or size is None:
        return 0
    total, tuples = float(size["bytes"]), float(size["tuples"])  # type: ignore[index]
    # A table not analysed yet has no row estimate: its rows are then taken to be these (an upper bound).
    return round(rows * total / max(tuples, rows))

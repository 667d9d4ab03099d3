"""Hits that follow links from other hits rather than match the query (services/search/hybrid.py): the
turn after a question, and the turns a memory was extracted from (its provenance, which also dates a
memory with no time of its own for recency)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.services.core.pseudonyms import among
from engramdb.services.search.retrievers import Hit, ranking
from engramdb.storage import tables as t
from engramdb.storage.filters import at_turns


async def replies(
    conn: AsyncConnection, conds: list[ColumnElement[bool]], asked: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The turn after each message row of ``asked`` that asks something (its ``content`` holds a question
    mark), under ``conds``, with the ranking columns and ``question_id``. In a
    conversation the answer to a question is usually the next turn, and a query often matches the
    question better than its answer ("What did you take away from the book?" → "It taught me
    self-acceptance"). A single-table statement: a self-join of the partitioned message table cost more
    to plan (~10 ms) than to run."""
    after = {(row["session_id"], row["seq"] + 1): row["id"] for row in asked if "?" in row["content"]}
    if not after:
        return []
    msg = t.message
    statement = select(*ranking("message", msg)).select_from(at_turns(msg, list(after))).where(*conds)
    rows = [dict(r) for r in (await conn.execute(statement)).mappings().all()]
    for row in rows:
        row["question_id"] = after[row["session_id"], row["seq"]]
    return rows


async def sources(
    conn: AsyncConnection,
    conds: list[ColumnElement[bool]],
    memories: list[dict[str, Any]],
    known: set[uuid.UUID],
) -> tuple[list[uuid.UUID], list[dict[str, Any]]]:
    """The messages the ``memories`` rows (with ``source_message_ids``) were extracted from, in the
    memories' order (each message once), and the ranking rows of those not in ``known``, under the
    message ``conds`` (one statement)."""
    ordered = list(dict.fromkeys(m for memory in memories for m in memory.get("source_message_ids") or ()))
    missing = [m for m in ordered if m not in known]
    rows: list[dict[str, Any]] = []
    if missing:
        msg = t.message
        statement = select(*ranking("message", msg)).where(*conds, among(msg.c.id, missing))
        rows = [dict(r) for r in (await conn.execute(statement)).mappings().all()]
    visible = {r["id"] for r in rows} | known
    return [m for m in ordered if m in visible], rows


async def said_at(conn: AsyncConnection, org_id: uuid.UUID, hits: Iterable[Hit]) -> None:
    """Set ``said_at`` on the memory candidates with no event time of their own (``occurred_at``): the
    latest ``occurred_at`` of the messages they were drawn from, so recency dates an imported history by
    when things were said, not by the import. One query for all of them, run only when recency counts."""
    undated = {hit.row["id"]: hit for hit in hits if hit.kind == "memory" and hit.row.get("occurred_at") is None}
    if not undated:
        return
    mem, msg = t.memory, t.message
    query = (
        select(mem.c.id, func.max(msg.c.occurred_at).label("said_at"))
        .select_from(mem.join(msg, (msg.c.org_id == mem.c.org_id) & (msg.c.id == any_(mem.c.source_message_ids))))
        .where(mem.c.org_id == org_id, among(mem.c.id, undated))
        .group_by(mem.c.id)
    )
    for row in await conn.execute(query):
        undated[row.id].row["said_at"] = row.said_at

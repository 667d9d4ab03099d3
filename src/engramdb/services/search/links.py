"""Hits that follow links from other hits rather than match the query (services/search/hybrid.py): the
turn after a question, and the turns a memory was extracted from (its provenance)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ARRAY, UUID, BigInteger, ColumnElement, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.services.core.pseudonyms import among
from engramdb.services.search.retrievers import ranking
from engramdb.storage import tables as t


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
    # The wanted (session, seq) pairs as two arrays joined in: one statement text whatever their number (a
    # row-value IN list is a new statement, planned anew, for every length: 5-8 ms at 50 pairs).
    sessions, seqs = zip(*after, strict=True)
    wanted = (
        func.unnest(
            bindparam("sessions", list(sessions), type_=ARRAY(UUID(as_uuid=True))),
            bindparam("seqs", list(seqs), type_=ARRAY(BigInteger)),
        )
        .table_valued("session_id", "seq")
        .render_derived(name="wanted")
    )
    on = (msg.c.session_id == wanted.c.session_id) & (msg.c.seq == wanted.c.seq)
    statement = select(*ranking("message", msg)).select_from(msg.join(wanted, on)).where(*conds)
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

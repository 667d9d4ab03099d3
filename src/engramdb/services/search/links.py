"""Hits that follow links from other hits rather than match the query (services/search/hybrid.py): the
turn after a question, and the turns a memory was extracted from (its provenance)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.services.core.pseudonyms import among
from engramdb.services.search.retrievers import MESSAGE_RANKING
from engramdb.storage import tables as t


async def replies(
    conn: AsyncConnection, conds: list[ColumnElement[bool]], asked: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The turn after each message row of ``asked`` that asks something (its text holds a question mark),
    under ``conds``, with the ranking columns and ``question_id``. In a conversation the answer to a
    question is usually the next turn, and a query often matches the question better than its answer
    ("What did you take away from the book?" → "It taught me self-acceptance"). Two single-table
    statements: a self-join of the partitioned message table cost more to plan (~10 ms) than to run."""
    if not asked:
        return []
    msg = t.message
    ids = [row["id"] for row in asked]
    asks = select(msg.c.id).where(*conds, among(msg.c.id, ids), func.strpos(msg.c.content, "?") > 0)
    questions = set((await conn.execute(asks)).scalars())
    after = {(row["session_id"], row["seq"] + 1): row["id"] for row in asked if row["id"] in questions}
    if not after:
        return []
    statement = select(*(msg.c[c] for c in MESSAGE_RANKING)).where(
        *conds, tuple_(msg.c.session_id, msg.c.seq).in_(list(after))
    )
    rows = [dict(r) for r in (await conn.execute(statement)).mappings().all()]
    for row in rows:
        row["question_id"] = after[row["session_id"], row["seq"]]
    return rows


async def sources(
    conn: AsyncConnection, conds: list[ColumnElement[bool]], memories: list[uuid.UUID], known: set[uuid.UUID]
) -> tuple[list[uuid.UUID], list[dict[str, Any]]]:
    """The messages ``memories`` were extracted from, in the memories' order (each message once), and the
    ranking rows of those not in ``known``, under the message ``conds`` (one statement for each)."""
    if not memories:
        return [], []
    mem = t.memory
    found = {
        r.id: r.source_message_ids
        for r in await conn.execute(select(mem.c.id, mem.c.source_message_ids).where(among(mem.c.id, memories)))
    }
    ordered = list(dict.fromkeys(m for memory in memories for m in found.get(memory) or ()))
    missing = [m for m in ordered if m not in known]
    rows: list[dict[str, Any]] = []
    if missing:
        msg = t.message
        statement = select(*(msg.c[c] for c in MESSAGE_RANKING)).where(*conds, among(msg.c.id, missing))
        rows = [dict(r) for r in (await conn.execute(statement)).mappings().all()]
    visible = {r["id"] for r in rows} | known
    return [m for m in ordered if m in visible], rows

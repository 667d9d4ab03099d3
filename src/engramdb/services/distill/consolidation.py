"""Consolidation of candidate memories into what is stored, never destructively.

Each candidate is compared with the owner's active, unexpired memories (an expired memory is gone for
every reader, so a repeat must not vanish into it): the same normalized text, or a vector
within ``NOOP`` cosine, is a NOOP (the existing memory gains the new provenance); a memory of the same
stateful type (fact or preference) and speaker within ``UPDATE`` cosine is an UPDATE (the new wording
replaces the old, which stays in ``memory_history``); anything else is an ADD. Events and plans are not
updated by similar ones: two visits to the same place are two memories. Each write is audited
(``memory.created``, ``memory.updated``, ``memory.reinforced``) in the caller's transaction.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.providers.extraction import MemoryCandidate
from engramdb.services.core import audit, events
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.memory import memories
from engramdb.storage import tables as t
from engramdb.storage.filters import unexpired
from engramdb.storage.repo import public_columns

mem = t.memory
NOOP = 0.92
UPDATE = 0.80
_STATEFUL = {"fact", "preference"}
_WORDS = re.compile(r"[^\w]+")
MemoryAction = Literal["ADD", "UPDATE", "NOOP"]


def normalized(text: str) -> str:
    return " ".join(_WORDS.sub(" ", text.lower()).split())


@dataclass
class Owner:
    """The scope an extracted memory is written to: the session's."""

    team_id: uuid.UUID | None
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    app_id: uuid.UUID | None
    session_id: uuid.UUID | None


@dataclass
class Outcome:
    memory_id: uuid.UUID
    action: MemoryAction


def _owned(caller: Caller, owner: Owner) -> list[Any]:
    """Memories of exactly the same scope: another team's, app's or agent's memory is never touched."""
    conds = [mem.c.org_id == caller.org_id, mem.c.state == "active", unexpired(mem)]
    for column, value in (
        (mem.c.user_id, owner.user_id),
        (mem.c.team_id, owner.team_id),
        (mem.c.agent_id, owner.agent_id),
        (mem.c.app_id, owner.app_id),
    ):
        conds.append(column.is_(None) if value is None else column == value)
    return conds


async def consolidate(
    conn: AsyncConnection,
    rt: Runtime,
    caller: Caller,
    owner: Owner,
    cand: MemoryCandidate,
    vector: list[float],
    *,
    categories: list[str],
    extractor: str,
) -> Outcome:
    distance = mem.c.embedding.cosine_distance(vector)
    nearest = [
        dict(r)
        for r in (
            await conn.execute(
                select(*public_columns(mem), (1 - distance).label("similarity"))
                .where(*_owned(caller, owner), mem.c.embedding_model == rt.embedder.model)
                .order_by(distance)
                .limit(5)
            )
        ).mappings()
    ]
    key = normalized(cand.content)
    for row in nearest:
        if normalized(row["content"]) == key or row["similarity"] >= NOOP:
            await _reinforce(conn, caller, row, cand)
            return Outcome(row["id"], "NOOP")
    for row in nearest:
        if (
            row["similarity"] >= UPDATE
            and cand.memory_type in _STATEFUL
            and row["memory_type"] == cand.memory_type
            and row["speaker"] == cand.speaker
        ):
            locked = dict(
                (
                    await conn.execute(
                        select(*public_columns(mem))
                        .where(mem.c.org_id == caller.org_id, mem.c.id == row["id"])
                        .with_for_update()
                    )
                )
                .mappings()
                .one()
            )
            changes = {
                "content": cand.content,
                "content_hash": hashlib.sha256(cand.content.encode()).digest(),
                "embedding": vector,
                "embedding_model": rt.embedder.model,
                "importance": max(row["importance"], cand.importance),
                "categories": list(dict.fromkeys([*row["categories"], *categories])),
            }
            await memories.apply_change(
                conn, caller, locked, changes, "updated", reason="a newer statement replaced it"
            )
            await _add_sources(conn, caller, row["id"], row["source_message_ids"], cand)
            return Outcome(row["id"], "UPDATE")
    memory_id = ids.uuid7()
    row = dict(
        (
            await conn.execute(
                insert(mem)
                .values(
                    org_id=caller.org_id,
                    id=memory_id,
                    team_id=owner.team_id,
                    user_id=owner.user_id,
                    agent_id=owner.agent_id,
                    app_id=owner.app_id,
                    session_id=owner.session_id,
                    content=cand.content,
                    memory_type=cand.memory_type,
                    importance=cand.importance,
                    categories=categories,
                    source="extraction",
                    extractor=extractor,
                    speaker=cand.speaker,
                    occurred_at=cand.occurred_at,
                    source_message_ids=list(cand.message_ids),
                    content_hash=hashlib.sha256(cand.content.encode()).digest(),
                    embedding=vector,
                    embedding_model=rt.embedder.model,
                    language=rt.settings.search_language,
                )
                .returning(*public_columns(mem))
            )
        )
        .mappings()
        .one()
    )
    await memories.write_history(conn, caller, row, "created", None, memories.snapshot(row))
    await audit.record(conn, caller, "memory.created", "memory", memory_id)
    created = memories.event_data(row, "created")
    await events.emit(conn, org_id=caller.org_id, event_type="memory.created", data=created)
    return Outcome(memory_id, "ADD")


async def _add_sources(
    conn: AsyncConnection, caller: Caller, memory_id: uuid.UUID, existing: list[uuid.UUID], cand: MemoryCandidate
) -> list[uuid.UUID]:
    merged = list(dict.fromkeys([*existing, *cand.message_ids]))[-200:]
    await conn.execute(
        update(mem).where(mem.c.org_id == caller.org_id, mem.c.id == memory_id).values(source_message_ids=merged)
    )
    return merged


async def _reinforce(conn: AsyncConnection, caller: Caller, row: dict[str, Any], cand: MemoryCandidate) -> None:
    """A repeat: the memory gains the new provenance and at least the new importance; history and the
    audit log say so. A repeat of messages it already cites changes nothing and records nothing."""
    added = [m for m in cand.message_ids if m not in set(row["source_message_ids"])]
    if not added:
        return
    await _add_sources(conn, caller, row["id"], row["source_message_ids"], cand)
    fields = ["source_message_ids"]
    if cand.importance > row["importance"]:
        await conn.execute(
            update(mem).where(mem.c.org_id == caller.org_id, mem.c.id == row["id"]).values(importance=cand.importance)
        )
        fields.append("importance")
    await memories.write_history(
        conn, caller, row, "reinforced", None, {"source_message_ids": [str(m) for m in added], "content": cand.content}
    )
    await audit.record(conn, caller, "memory.reinforced", "memory", row["id"], {"fields": fields})

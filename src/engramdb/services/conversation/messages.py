"""Messages (episodes): appended to a session in batches, listed with filters and keyset pages."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, tuple_, update

from engramdb import ids
from engramdb.errors import InvalidRequest, NotFound
from engramdb.schemas.common import Page
from engramdb.schemas.conversations import Message, MessageBatch, MessageFilters
from engramdb.services.conversation.sessions import ensure_open, fetch_visible
from engramdb.services.conversation.vectors import PENDING, MessageText, MessageVectors, embed_messages
from engramdb.services.core import audit, jobs, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy.directory import resolve_user
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching
from engramdb.storage.pagination import BAD_CURSOR, decode_cursor, encode_cursor
from engramdb.storage.repo import one_or_404, public_columns

m = t.message
s = t.session


def content_hash(content: str) -> bytes:
    return hashlib.sha256(content.encode()).digest()


async def add(
    rt: Runtime, caller: Caller, session_id: uuid.UUID, batch: MessageBatch
) -> tuple[list[Message], uuid.UUID | None]:
    """Append a batch atomically: all of it is stored, in order, or none of it.

    Messages are embedded before the transaction opens (so no lock is held while the model runs) and
    before the call returns, so what was just written is searchable at once; with ``defer_embedding``
    the background backfill embeds them instead. With ``extract`` an extraction job is queued in the same
    transaction; its id is returned with the messages.
    """
    caller.require("write")
    now = datetime.now(UTC)
    vectors: list[MessageVectors | None] = [None] * len(batch.messages)
    if not batch.defer_embedding:
        async with rt.db.tenant(caller.org_id) as conn:
            ensure_open(await fetch_visible(conn, caller, session_id, write=True))  # 404 / 409 before embedding
            last = (
                await conn.execute(
                    select(m.c.name, m.c.content)
                    .where(m.c.org_id == caller.org_id, m.c.session_id == session_id)
                    .order_by(m.c.seq.desc())
                    .limit(1)
                )
            ).first()
        previous = None if last is None else (last.name, last.content)
        texts = []
        for msg in batch.messages:
            texts.append(MessageText(msg.name, msg.content, msg.occurred_at or now, previous))
            previous = (msg.name, msg.content)
        vectors = list(await embed_messages(rt.embedder, texts, rt.settings.message_vectors))
    model = None if batch.defer_embedding else rt.embedder.model
    async with rt.db.tenant(caller.org_id) as conn:
        sess = await fetch_visible(conn, caller, session_id, lock=True)
        ensure_open(sess)
        parents = {msg.parent_id for msg in batch.messages if msg.parent_id is not None}
        if parents:
            found = set(
                (
                    await conn.execute(
                        select(m.c.id).where(
                            m.c.org_id == caller.org_id, m.c.session_id == session_id, m.c.id.in_(parents)
                        )
                    )
                ).scalars()
            )
            missing = parents - found
            if missing:
                raise NotFound(f"parent message {sorted(map(str, missing))[0]} not found in session {session_id}")
        users: dict[tuple[uuid.UUID | None, str | None], uuid.UUID | None] = {}
        rows: list[dict[str, Any]] = []
        for msg, vector in zip(batch.messages, vectors, strict=True):
            ref = (msg.user_id, msg.external_user_id)
            if ref == (None, None):
                user_id = sess["user_id"]
            else:
                if ref not in users:
                    users[ref] = await resolve_user(
                        conn, caller, user_id=msg.user_id, external_user_id=msg.external_user_id
                    )
                user_id = users[ref]
            rows.append(
                {
                    "org_id": caller.org_id,
                    "id": ids.uuid7(),
                    "session_id": session_id,
                    "parent_id": msg.parent_id,
                    "team_id": sess["team_id"],
                    "user_id": user_id,
                    "agent_id": sess["agent_id"],
                    "app_id": sess["app_id"],
                    "role": msg.role,
                    "name": msg.name,
                    "content": msg.content,
                    "channel": msg.channel,
                    "tags": msg.tags,
                    "metadata": msg.metadata,
                    "content_hash": content_hash(msg.content),
                    "occurred_at": msg.occurred_at or now,
                    "embedding": vector.embedding if vector else None,
                    "part_embeddings": vector.part_embeddings if vector else None,
                    "context_embedding": vector.context_embedding if vector else None,
                    "embedding_model": model if vector is not None else None,
                    "language": rt.settings.search_language,
                }
            )
        latest = max(r["occurred_at"] for r in rows)
        last_seq = await conn.scalar(
            update(s)
            .where(s.c.org_id == caller.org_id, s.c.id == session_id)
            .values(
                message_count=s.c.message_count + len(rows),
                last_seq=s.c.last_seq + len(rows),
                last_message_at=func.greatest(s.c.last_message_at, latest),
                updated_at=func.now(),
            )
            .returning(s.c.last_seq)
        )
        assert last_seq is not None
        first_seq = last_seq - len(rows) + 1
        for offset, row in enumerate(rows):
            row["seq"] = first_seq + offset
        result = await conn.execute(insert(m).returning(*public_columns(m), sort_by_parameter_order=True), rows)
        stored = [dict(r) for r in result.mappings()]
        await audit.record(
            conn,
            caller,
            "messages.added",
            "session",
            session_id,
            {"count": len(stored), "message_ids": [str(r["id"]) for r in stored]},
        )
        job_id = None
        if batch.extract:
            job_id = await jobs.enqueue(
                conn,
                caller.org_id,
                queue.EXTRACT,
                max_attempts=rt.settings.job_max_attempts,
                session_id=session_id,
                user_id=sess["user_id"],
                lock=jobs.session_lock(caller.org_id, session_id),
            )
    if batch.defer_embedding:  # wake the backfill of whichever process runs it, rather than its next poll
        rt.listener.announce(rt.db, *PENDING)
    return [Message.model_validate(r) for r in stored], job_id


async def list_messages(db: Database, caller: Caller, session_id: uuid.UUID, filters: MessageFilters) -> Page[Message]:
    caller.require("read")
    conds: list[ColumnElement[bool]] = [m.c.org_id == caller.org_id, m.c.session_id == session_id]
    conds += matching(m, filters, equal=("role",))
    key = tuple_(m.c.occurred_at, m.c.seq)
    descending = filters.order == "desc"
    cursor, limit = filters.cursor, filters.limit
    if cursor is not None:
        when, seq = decode_cursor(cursor, size=2)
        try:
            if not isinstance(seq, int) or isinstance(seq, bool):
                raise TypeError("seq")
            last = (datetime.fromisoformat(str(when)), seq)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidRequest(BAD_CURSOR) from exc
        conds.append(key < tuple_(*last) if descending else key > tuple_(*last))
    order = (m.c.occurred_at.desc(), m.c.seq.desc()) if descending else (m.c.occurred_at.asc(), m.c.seq.asc())
    async with db.read(caller.org_id) as conn:
        await fetch_visible(conn, caller, session_id)
        result = await conn.execute(select(*public_columns(m)).where(*conds).order_by(*order).limit(limit + 1))
        rows = [dict(r) for r in result.mappings()]
    next_cursor = None
    if len(rows) > limit:
        last_row = rows[limit - 1]
        next_cursor = encode_cursor([last_row["occurred_at"].isoformat(), last_row["seq"]])
    return Page[Message](data=[Message.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor)


async def get(db: Database, caller: Caller, message_id: uuid.UUID) -> Message:
    caller.require("read")
    query = select(*public_columns(m)).where(*visibility.messages(caller), m.c.id == message_id)
    async with db.read(caller.org_id) as conn:
        row = await one_or_404(conn, query, "message", message_id)
    return Message.model_validate(row)

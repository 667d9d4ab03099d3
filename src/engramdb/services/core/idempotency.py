"""Idempotency keys: a POST sent again with the same ``Idempotency-Key`` gets the first answer again
instead of being done twice (a client that lost the connection cannot know whether its write landed).

Per organization and key, :func:`claim` records a digest of the request and ``running`` in a transaction
of its own (so a second request with the key sees it at once); the transport then runs the request and
either :func:`finish` keeps the answer (``done``) or :func:`release` forgets the key (a 5xx, or an answer
too large to keep), so that a retry runs the request again. A key is kept for ``ENGRAM_IDEMPOTENCY_WINDOW_S``
and then reused as new; a ``running`` key whose request went silent for ``IDEMPOTENCY_LEASE_S`` (its
process died) is taken over by the next request with it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import limits
from engramdb.storage import tables as t
from engramdb.storage.database import Database

k = t.idempotency_key


@dataclass(frozen=True)
class Claim:
    outcome: Literal["new", "replay", "mismatch", "busy"]
    status_code: int | None = None
    content_type: str | None = None
    body: bytes | None = None


async def claim(db: Database, org_id: uuid.UUID, key: str, request_hash: bytes, *, window_s: int) -> Claim:
    window = timedelta(seconds=window_s)
    async with db.tenant(org_id) as conn:
        # Keys past the window are forgotten (one index range of this org's keys).
        await conn.execute(delete(k).where(k.c.org_id == org_id, k.c.created_at < func.now() - window))
        stmt = (
            insert(k)
            .values(org_id=org_id, key=key, request_hash=request_hash, state="running")
            .on_conflict_do_nothing(index_elements=[k.c.org_id, k.c.key])
            .returning(k.c.key)
        )
        if await conn.scalar(stmt) is not None:
            return Claim("new")
        row = (
            (await conn.execute(select(k).where(k.c.org_id == org_id, k.c.key == key).with_for_update()))
            .mappings()
            .one()
        )
        if bytes(row["request_hash"]) != request_hash:
            return Claim("mismatch")
        if row["state"] == "done":
            return Claim("replay", row["status_code"], row["content_type"], bytes(row["body"] or b""))
        lease = timedelta(seconds=limits.IDEMPOTENCY_LEASE_S)
        stale = await conn.scalar(
            select(k.c.updated_at < func.now() - lease).where(k.c.org_id == org_id, k.c.key == key)
        )
        if not stale:
            return Claim("busy")
        await conn.execute(
            update(k).where(k.c.org_id == org_id, k.c.key == key).values(updated_at=func.now())
        )  # the first request died: this one runs it
        return Claim("new")


async def finish(
    db: Database, org_id: uuid.UUID, key: str, *, status_code: int, content_type: str | None, body: bytes
) -> None:
    async with db.tenant(org_id) as conn:
        await conn.execute(
            update(k)
            .where(k.c.org_id == org_id, k.c.key == key)
            .values(state="done", status_code=status_code, content_type=content_type, body=body, updated_at=func.now())
        )


async def release(db: Database, org_id: uuid.UUID, key: str) -> None:
    async with db.tenant(org_id) as conn:
        await conn.execute(delete(k).where(k.c.org_id == org_id, k.c.key == key, k.c.state == "running"))


async def forget_all(conn: AsyncConnection, org_id: uuid.UUID) -> int:
    """In an erasure's transaction: the organization's kept first answers go (they may quote the erased
    subject); a retry after it runs its request again. Keys still running keep their claim (they hold no
    answer yet), so the erasure's own answer, its receipt, is kept for its retries. Returns the answers
    forgotten."""
    return (await conn.execute(delete(k).where(k.c.org_id == org_id, k.c.state == "done"))).rowcount


async def forget_mentioning(conn: AsyncConnection, org_id: uuid.UUID, text: str) -> None:
    """In an erasure's transaction: the kept first answers that mention ``text`` (an erased row's id) go."""
    needle = func.convert_to(text, "UTF8")
    await conn.execute(delete(k).where(k.c.org_id == org_id, func.position(needle.op("IN")(k.c.body)) > 0))

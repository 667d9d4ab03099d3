"""User narratives: a versioned profile of each user, rewritten from their memories and current facts.

A narrate job writes a new version only when something changed since the last one; old versions stay.
A periodic job (``engramdb.jobs``) queues narrate jobs for users whose memories changed.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import NotFound
from engramdb.providers.extraction import Usage
from engramdb.schemas.common import Page
from engramdb.schemas.jobs import Job
from engramdb.schemas.narratives import Narrative
from engramdb.services.core import jobs, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.graph import facts
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.repo import one_or_404, page_by_id, public_columns

un = t.user_narrative
mem = t.memory
NARRATIVE_CHARS = 3_000
MAX_STATEMENTS = 200


async def _user(conn: AsyncConnection, caller: Caller, user_id: uuid.UUID) -> None:
    """404 unless the caller may see this user."""
    u = t.user_account
    await one_or_404(conn, visibility.users(caller).where(u.c.id == user_id), "user", user_id)


async def run(rt: Runtime, org_id: uuid.UUID, job_id: uuid.UUID, *, attempt: int, final: bool) -> dict[str, Any] | None:
    summarizer = rt.intelligence.summarizer

    async def work(job: dict[str, Any]) -> dict[str, Any] | None:
        return await _narrate(rt, org_id, job_id, job["user_id"])

    return await jobs.execute(rt.db, org_id, job_id, attempt=attempt, final=final, provider=summarizer.name, work=work)


async def _statements(conn: AsyncConnection, org_id: uuid.UUID, user_id: uuid.UUID) -> tuple[list[str], list[str]]:
    """The user's current facts and active memories, most telling first."""
    f = t.fact
    current = await conn.execute(
        select(f.c.statement)
        .where(f.c.org_id == org_id, f.c.user_id == user_id, *facts.current_now())
        .order_by(f.c.weight.desc(), f.c.recorded_at.desc())
        .limit(MAX_STATEMENTS)
    )
    memories = await conn.execute(
        select(mem.c.content)
        .where(mem.c.org_id == org_id, mem.c.user_id == user_id, mem.c.state == "active")
        .order_by(mem.c.importance.desc(), mem.c.updated_at.desc())
        .limit(MAX_STATEMENTS)
    )
    return list(current.scalars()), list(memories.scalars())


async def _narrate(rt: Runtime, org_id: uuid.UUID, job_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any] | None:
    summarizer = rt.intelligence.summarizer
    u = t.user_account
    async with rt.db.tenant(org_id) as conn:
        user = (
            await conn.execute(select(u.c.display_name, u.c.external_id).where(u.c.org_id == org_id, u.c.id == user_id))
        ).first()
        if user is None:
            skipped = {"skipped": "user deleted"}
            await jobs.succeed(conn, org_id, job_id, skipped, provider=summarizer.name, usage=Usage())
            return None
        current, memories = await _statements(conn, org_id, user_id)
        previous = await conn.scalar(
            select(un.c.content)
            .where(un.c.org_id == org_id, un.c.user_id == user_id)
            .order_by(un.c.version.desc())
            .limit(1)
        )
    subject = user.display_name or user.external_id or "the user"
    content, usage = await summarizer.narrate(subject, previous, [*current, *memories], max_chars=NARRATIVE_CHARS)
    async with rt.db.tenant(org_id) as conn:
        result: dict[str, Any] = {"unchanged": True}
        if content and content != previous:
            version = await conn.scalar(
                select(func.coalesce(func.max(un.c.version), 0) + 1).where(
                    un.c.org_id == org_id, un.c.user_id == user_id
                )
            )
            await conn.execute(
                insert(un).values(
                    org_id=org_id,
                    id=ids.uuid7(),
                    user_id=user_id,
                    version=version,
                    content=content,
                    provider=summarizer.name,
                    memory_count=len(memories),
                    fact_count=len(current),
                )
            )
            result = {"version": version, "memories": len(memories), "facts": len(current)}
        await jobs.succeed(conn, org_id, job_id, result, provider=summarizer.name, usage=usage)
    return result


async def request(rt: Runtime, caller: Caller, user_id: uuid.UUID) -> Job:
    """Queue a narrative rewrite for one user now."""
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        await _user(conn, caller, user_id)
        job_id = await jobs.enqueue(
            conn,
            caller.org_id,
            queue.NARRATE,
            max_attempts=rt.settings.job_max_attempts,
            user_id=user_id,
            lock=jobs.user_lock(caller.org_id, user_id),
        )
    return await jobs.get(rt.db, caller, job_id)


async def latest(rt: Runtime, caller: Caller, user_id: uuid.UUID) -> Narrative:
    caller.require("read")
    async with rt.db.tenant(caller.org_id) as conn:
        await _user(conn, caller, user_id)
        row = (
            (
                await conn.execute(
                    select(*public_columns(un))
                    .where(un.c.org_id == caller.org_id, un.c.user_id == user_id)
                    .order_by(un.c.version.desc())
                    .limit(1)
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"user {user_id} has no narrative yet; request one with POST /v1/users/{user_id}/narrative")
    return Narrative.model_validate(dict(row))


async def versions(
    rt: Runtime, caller: Caller, user_id: uuid.UUID, *, cursor: str | None, limit: int
) -> Page[Narrative]:
    caller.require("read")
    async with rt.db.tenant(caller.org_id) as conn:
        await _user(conn, caller, user_id)
        rows, next_cursor = await page_by_id(
            conn,
            select(*public_columns(un)).where(un.c.org_id == caller.org_id, un.c.user_id == user_id),
            un,
            cursor=cursor,
            limit=limit,
        )
    return Page[Narrative](data=[Narrative.model_validate(r) for r in rows], next_cursor=next_cursor)


_STALE = text(
    """SELECT m.org_id, m.user_id FROM memory m
       WHERE m.user_id IS NOT NULL AND m.state = 'active'
       GROUP BY m.org_id, m.user_id
       HAVING max(m.updated_at) > greatest(
         (SELECT max(n.created_at) FROM user_narrative n WHERE n.org_id = m.org_id AND n.user_id = m.user_id),
         (SELECT max(j.finished_at) FROM job j WHERE j.org_id = m.org_id AND j.user_id = m.user_id
            AND j.kind = :kind AND j.status = 'succeeded'),
         '-infinity')
       AND NOT EXISTS (SELECT 1 FROM job j WHERE j.org_id = m.org_id AND j.user_id = m.user_id
                       AND j.kind = :kind AND j.status IN ('queued', 'running'))
       ORDER BY max(m.updated_at)
       LIMIT :limit"""
)


async def queue_stale(rt: Runtime, *, limit: int = 100) -> int:
    """Queue narrate jobs for users whose memories changed since their last narrative (periodic)."""
    async with rt.db.system() as conn:
        stale = (await conn.execute(_STALE, {"kind": queue.NARRATE, "limit": limit})).all()
    for org_id, user_id in stale:
        async with rt.db.tenant(org_id) as conn:
            await jobs.enqueue(
                conn,
                org_id,
                queue.NARRATE,
                max_attempts=rt.settings.job_max_attempts,
                user_id=user_id,
                lock=jobs.user_lock(org_id, user_id),
            )
    return len(stale)

"""User narratives: a versioned profile of each user, rewritten from their memories and current facts.

A profile says what holds now, so each version is written afresh from the facts valid now (believed,
``valid_from`` <= now < ``valid_until``) and the active memories that have not expired, never from the
previous version: carried forward, a previous version kept what has since stopped holding (a fact closed
by a contradicting one, "lives in Lisbon" beside "lives in Berlin"; a memory expired or deleted).
A narrate job writes a new version only when the text changed; old versions stay, until one of the
user's memories is erased: any version may quote it, so all go and a fresh one is queued (:func:`renew`).
A periodic job (``engramdb.jobs``) queues narrate jobs for users whose memories changed or expired.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import NotFound
from engramdb.providers.extraction import Usage
from engramdb.schemas.common import Page
from engramdb.schemas.jobs import Job
from engramdb.schemas.narratives import Narrative, NarrativeFilters
from engramdb.services.core import jobs, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.pseudonyms import among
from engramdb.services.core.runtime import Runtime
from engramdb.services.graph import facts
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.filters import unexpired
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


async def _statements(
    conn: AsyncConnection, org_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[list[str], list[str], list[uuid.UUID]]:
    """The user's facts valid now and unexpired active memories, most telling first; and the memories' ids."""
    f = t.fact
    current = await conn.execute(
        select(f.c.statement)
        .where(f.c.org_id == org_id, f.c.user_id == user_id, *facts.current_now())
        .order_by(f.c.weight.desc(), func.coalesce(f.c.valid_from, f.c.recorded_at).desc())
        .limit(MAX_STATEMENTS)
    )
    memories = await conn.execute(
        select(mem.c.id, mem.c.content)
        .where(mem.c.org_id == org_id, mem.c.user_id == user_id, mem.c.state == "active", unexpired(mem))
        .order_by(mem.c.importance.desc(), mem.c.updated_at.desc())
        .limit(MAX_STATEMENTS)
    )
    rows = memories.all()
    return list(current.scalars()), [r.content for r in rows], [r.id for r in rows]


async def _erased_meanwhile(conn: AsyncConnection, org_id: uuid.UUID, memory_ids: list[uuid.UUID]) -> bool:
    """Whether a memory the narrative was written from has been erased since. The survivors are locked
    (shared) until the version commits, so an erasure that comes later waits and then deletes the version."""
    query = select(mem.c.id).where(mem.c.org_id == org_id, mem.c.id.in_(memory_ids)).with_for_update(read=True)
    return len(set((await conn.execute(query)).scalars())) < len(set(memory_ids))


async def renew(conn: AsyncConnection, rt: Runtime, org_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """In the erasure of one of the user's memories (``governance.erase.memory``): delete the user's saved
    versions, any of which may quote it, and queue a fresh one from what is left (when there were some, or
    one is being written: it will not be saved). Returns the versions deleted."""
    deleted = (await conn.execute(delete(un).where(un.c.org_id == org_id, un.c.user_id == user_id))).rowcount
    j = t.job
    writing = select(j.c.id).where(
        j.c.org_id == org_id, j.c.user_id == user_id, j.c.kind == queue.NARRATE, j.c.status == "running"
    )
    if deleted or await conn.scalar(writing.limit(1)) is not None:
        await jobs.enqueue(
            conn,
            org_id,
            queue.NARRATE,
            max_attempts=rt.settings.job_max_attempts,
            user_id=user_id,
            lock=jobs.user_lock(org_id, user_id),
        )
    return deleted


async def renew_many(conn: AsyncConnection, rt: Runtime, org_id: uuid.UUID, user_ids: list[uuid.UUID]) -> int:
    """:func:`renew` for many users at once (retention deleting a batch of memories): a few statements in
    all, not a few per user. Returns the versions deleted."""
    if not user_ids:
        return 0
    gone = delete(un).where(un.c.org_id == org_id, among(un.c.user_id, user_ids)).returning(un.c.user_id)
    versions = list((await conn.execute(gone)).scalars())
    j = t.job
    writing = select(j.c.user_id).where(
        j.c.org_id == org_id, among(j.c.user_id, user_ids), j.c.kind == queue.NARRATE, j.c.status == "running"
    )
    for user_id in sorted(set(versions) | set((await conn.execute(writing)).scalars())):
        await jobs.enqueue(
            conn,
            org_id,
            queue.NARRATE,
            max_attempts=rt.settings.job_max_attempts,
            user_id=user_id,
            lock=jobs.user_lock(org_id, user_id),
        )
    return len(versions)


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
        current, memories, memory_ids = await _statements(conn, org_id, user_id)
        previous = await conn.scalar(
            select(un.c.content)
            .where(un.c.org_id == org_id, un.c.user_id == user_id)
            .order_by(un.c.version.desc())
            .limit(1)
        )
    subject = user.display_name or user.external_id or "the user"
    # Not given the previous version (see the module docstring); it only decides whether this one is new.
    content, usage = await summarizer.narrate(subject, None, [*current, *memories], max_chars=NARRATIVE_CHARS)
    async with rt.db.tenant(org_id) as conn:
        if await _erased_meanwhile(conn, org_id, memory_ids):  # its erasure queued the next version
            skipped = {"skipped": "a memory was erased meanwhile"}
            await jobs.succeed(conn, org_id, job_id, skipped, provider=summarizer.name, usage=usage)
            return None
        result: dict[str, Any] = {"unchanged": True}
        if content != (previous or ""):  # emptied too, when nothing about the user holds any more
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


async def versions(rt: Runtime, caller: Caller, user_id: uuid.UUID, filters: NarrativeFilters) -> Page[Narrative]:
    caller.require("read")
    async with rt.db.tenant(caller.org_id) as conn:
        await _user(conn, caller, user_id)
        rows, next_cursor = await page_by_id(
            conn,
            select(*public_columns(un)).where(un.c.org_id == caller.org_id, un.c.user_id == user_id),
            un,
            cursor=filters.cursor,
            limit=filters.limit,
        )
    return Page[Narrative](data=[Narrative.model_validate(r) for r in rows], next_cursor=next_cursor)


# A user is stale when one of their memories changed (a deletion or an archiving too) or expired since
# their last narrative.
_CHANGED = "greatest(m.updated_at, CASE WHEN m.expires_at <= now() THEN m.expires_at END)"
_STALE = text(
    f"""SELECT m.org_id, m.user_id FROM memory m
       WHERE m.user_id IS NOT NULL
       GROUP BY m.org_id, m.user_id
       HAVING max({_CHANGED}) > greatest(
         (SELECT max(n.created_at) FROM user_narrative n WHERE n.org_id = m.org_id AND n.user_id = m.user_id),
         (SELECT max(j.finished_at) FROM job j WHERE j.org_id = m.org_id AND j.user_id = m.user_id
            AND j.kind = :kind AND j.status = 'succeeded'),
         '-infinity')
       AND NOT EXISTS (SELECT 1 FROM job j WHERE j.org_id = m.org_id AND j.user_id = m.user_id
                       AND j.kind = :kind AND j.status IN ('queued', 'running'))
       ORDER BY max({_CHANGED})
       LIMIT :limit"""
)


async def queue_stale(rt: Runtime, *, limit: int = 100) -> int:
    """Queue narrate jobs for users whose memories changed or expired since their last narrative (periodic)."""
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

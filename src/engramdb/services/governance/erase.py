"""Erasure: the deletes that cascade across areas, each one operation in one transaction.

Deleting a directory item (team, user, agent, app) clears the columns that point at it, and a memory's
links change with history like any other change of a memory; deleting a user also unlinks other users'
memories drawn from the user's sessions, recounts the other sessions the user spoke in, redacts the
webhook deliveries about them and raises ``user.deleted``. Deleting a session keeps the memories drawn
from it (their link is cleared, with history). These cascades touch the directory, conversations and
memories at once, so they live here, above all three, instead of bouncing between them.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.services.conversation import sessions
from engramdb.services.core import audit, events
from engramdb.services.core.caller import Caller
from engramdb.services.memory import memories
from engramdb.services.tenancy import directory
from engramdb.services.tenancy.directory import Resource
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.repo import one_or_404


async def directory_item(db: Database, caller: Caller, res: Resource[Any], item_id: uuid.UUID) -> None:
    """Delete one item. Deleting a user also deletes their sessions, messages, memories and keys, redacts
    the webhook deliveries about them and raises ``user.deleted``."""
    caller.require("admin")
    tbl = res.table
    async with db.tenant(caller.org_id) as conn:
        await one_or_404(
            conn,
            select(tbl.c.id).where(tbl.c.org_id == caller.org_id, tbl.c.id == item_id).with_for_update(),
            res.kind,
            item_id,
        )
        for ref_table, column in res.referrers:
            if ref_table is t.memory:  # a memory's links change with history, like any other change
                await memories.unlink(conn, caller, column, [item_id])
                continue
            await conn.execute(
                update(ref_table)
                .where(ref_table.c.org_id == caller.org_id, ref_table.c[column] == item_id)
                .values({column: None})
            )
        recount: list[uuid.UUID] = []
        if res is directory.USERS:
            recount = await _prepare_user_erasure(conn, caller, item_id)
            await _erase_user_events(conn, caller, item_id)
        await conn.execute(sql_delete(tbl).where(tbl.c.org_id == caller.org_id, tbl.c.id == item_id))
        if recount:
            s, m = t.session, t.message
            counted = select(func.count()).where(m.c.org_id == s.c.org_id, m.c.session_id == s.c.id).scalar_subquery()
            await conn.execute(
                update(s).where(s.c.org_id == caller.org_id, s.c.id.in_(recount)).values(message_count=counted)
            )
        await audit.record(conn, caller, f"{res.kind}.deleted", res.kind, item_id)


async def _prepare_user_erasure(conn: AsyncConnection, caller: Caller, user_id: uuid.UUID) -> list[uuid.UUID]:
    """Before a user's rows cascade away: other users' memories drawn from this user's sessions lose that
    link (recorded), and the other sessions this user spoke in are returned to have their counts redone."""
    s, m = t.session, t.message
    own = list(
        (await conn.execute(select(s.c.id).where(s.c.org_id == caller.org_id, s.c.user_id == user_id))).scalars()
    )
    mem = t.memory
    referenced = list(
        (
            await conn.execute(
                select(mem.c.session_id)
                .distinct()
                .where(
                    mem.c.org_id == caller.org_id,
                    mem.c.session_id.in_(own),
                    or_(mem.c.user_id.is_(None), mem.c.user_id != user_id),
                )
            )
        ).scalars()
    )
    await memories.unlink(conn, caller, "session_id", referenced)
    others = select(m.c.session_id).distinct().where(m.c.org_id == caller.org_id, m.c.user_id == user_id)
    if own:
        others = others.where(m.c.session_id.not_in(own))
    return list((await conn.execute(others)).scalars())


async def _erase_user_events(conn: AsyncConnection, caller: Caller, user_id: uuid.UUID) -> None:
    """Before a user's rows cascade away: the webhook deliveries about their memories, facts, documents
    and jobs keep only ids, and one ``user.deleted`` event (ids and a count only) says they are erased.
    One event, not a ``memory.invalidated`` per memory: a user's memories are not bounded in number."""
    mem = t.memory
    await events.redact_user(conn, caller.org_id, user_id)
    count = select(func.count()).select_from(mem).where(mem.c.org_id == caller.org_id, mem.c.user_id == user_id)
    data = {"object": "user", "action": "deleted", "user": {"id": user_id}, "memories": await conn.scalar(count)}
    await events.emit(conn, org_id=caller.org_id, event_type="user.deleted", data=data)


async def session(db: Database, caller: Caller, session_id: uuid.UUID) -> None:
    """Delete a session and its messages. Memories drawn from it stay (their session link is cleared)."""
    caller.require("write")
    async with db.tenant(caller.org_id) as conn:
        await sessions.fetch_visible(conn, caller, session_id, lock=True)
        await memories.unlink(conn, caller, "session_id", [session_id])
        s = t.session
        await conn.execute(sql_delete(s).where(s.c.org_id == caller.org_id, s.c.id == session_id))
        await audit.record(conn, caller, "session.deleted", "session", session_id)

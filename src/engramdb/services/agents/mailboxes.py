"""Mailboxes: messages between agents, direct or broadcast to a team or the organization (channels).

A message is one ``agent_message`` row (partitioned by time, like ``message``) and one
``agent_message_delivery`` row per recipient, written in the same transaction: a team broadcast goes to
the agents of the team at the time it is sent, an organization broadcast to every agent (the sender
excepted). A recipient's delivery row holds its state: ``delivered_at`` (first served to it, by a list or
a stream) and ``acked_at``. Replies join their parent's thread (``thread_id``: the first message's id).
Every message is audited (``agent_message.sent``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import NotFound, ValidationFailed
from engramdb.schemas.agents import Acked, AgentMessage, AgentMessageCreate, InboxAck, InboxFilters, InboxItem
from engramdb.schemas.common import Page
from engramdb.services.agents import history
from engramdb.services.agents.heartbeats import exists as agent_exists
from engramdb.services.core import audit, visibility
from engramdb.services.core.caller import Caller
from engramdb.storage import notify
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.pagination import decode_cursor, encode_cursor
from engramdb.storage.repo import require_row

m, d, a = t.agent_message, t.agent_message_delivery, t.agent


async def send(db: Database, caller: Caller, body: AgentMessageCreate) -> AgentMessage:
    caller.require("write")
    sender = caller.bind("agent_id", body.from_agent_id)
    async with db.tenant(caller.org_id) as conn:
        if sender is not None:
            await agent_exists(conn, caller, sender)
        await require_row(conn, a, caller.org_id, body.to_agent_id, "agent")
        await require_row(conn, t.team, caller.org_id, body.to_team_id, "team")
        await require_row(conn, t.task, caller.org_id, body.task_id, "task")
        thread_id = None
        if body.reply_to is not None:
            parent = select(m.c.thread_id).where(*visibility.agent_messages(caller), m.c.id == body.reply_to)
            thread_id = await conn.scalar(parent)
            if thread_id is None:
                raise NotFound(f"agent message {body.reply_to} not found")
        recipients = await _recipients(conn, caller, body, sender)
        if not recipients:
            raise ValidationFailed("no agent would receive this message (the team or organization has no other agent)")
        message_id = ids.uuid7()
        (seq,) = await history.next_seqs(conn, caller.org_id, 1)
        values = body.model_dump(exclude={"from_agent_id"})
        stmt = (
            insert(m)
            .values(
                org_id=caller.org_id,
                id=message_id,
                seq=seq,
                from_agent_id=sender,
                thread_id=thread_id or message_id,
                key_id=caller.key_id,
                **values,
            )
            .returning(m)
        )
        row = dict((await conn.execute(stmt)).mappings().one())
        deliveries = [
            {
                "org_id": caller.org_id,
                "agent_id": r,
                "message_id": message_id,
                "seq": seq,
                "message_created_at": row["created_at"],
            }
            for r in recipients
        ]
        await conn.execute(insert(d).values(deliveries))
        details = {"message_type": body.message_type, "recipients": len(recipients)}
        await audit.record(conn, caller, "agent_message.sent", "agent_message", message_id, details)
        # One wake-up per inbox (a stream looks only at its own), in the transaction: a send holds the
        # counter to its commit anyway (history.py), and its one commit sends them.
        for recipient in recipients:
            await notify.notify(conn, caller.org_id, inbox_topic(recipient), seq)
    return AgentMessage.model_validate({**row, "recipients": len(recipients)})


async def _recipients(
    conn: AsyncConnection, caller: Caller, body: AgentMessageCreate, sender: uuid.UUID | None
) -> list[uuid.UUID]:
    if body.to_agent_id is not None:
        return [body.to_agent_id]
    query = select(a.c.id).where(a.c.org_id == caller.org_id)
    if body.to_team_id is not None:
        query = query.where(a.c.team_id == body.to_team_id)
    if sender is not None:
        query = query.where(a.c.id != sender)
    return list((await conn.execute(query.order_by(a.c.id))).scalars())


def inbox_topic(agent_id: uuid.UUID) -> str:
    return f"{history.INBOX_TOPIC}.{agent_id}"


def inbox_query(caller: Caller, agent_id: uuid.UUID) -> Any:
    """An agent's deliveries joined to their messages, oldest first (by ``seq``)."""
    joined = d.join(
        m, and_(m.c.org_id == d.c.org_id, m.c.id == d.c.message_id, m.c.created_at == d.c.message_created_at)
    )
    return (
        select(*m.c, d.c.delivered_at, d.c.acked_at)
        .select_from(joined)
        .where(d.c.org_id == caller.org_id, d.c.agent_id == agent_id)
        .order_by(d.c.seq)
    )


async def mark_delivered(
    conn: AsyncConnection, caller: Caller, agent_id: uuid.UUID, message_ids: list[uuid.UUID]
) -> None:
    if message_ids:
        stmt = (
            update(d)
            .where(d.c.org_id == caller.org_id, d.c.agent_id == agent_id, d.c.message_id.in_(message_ids))
            .where(d.c.delivered_at.is_(None))
            .values(delivered_at=func.now())
        )
        await conn.execute(stmt)


async def inbox(
    db: Database, caller: Caller, agent_id: uuid.UUID, filters: InboxFilters, *, peek: bool = False
) -> Page[InboxItem]:
    """An agent's inbox, oldest first; what it returns counts as delivered. ``peek`` is a person looking
    (the dashboard): newest first, and nothing counts as delivered, since the agent has not read it."""
    caller.require("read")
    query = inbox_query(caller, agent_id)
    if peek:
        query = query.order_by(None).order_by(d.c.seq.desc())
    if filters.unacked:
        query = query.where(d.c.acked_at.is_(None))
    if filters.message_type is not None:
        query = query.where(m.c.message_type == filters.message_type)
    if filters.thread_id is not None:
        query = query.where(m.c.thread_id == filters.thread_id)
    if filters.cursor is not None:
        (after,) = decode_cursor(filters.cursor, size=1)
        query = query.where(d.c.seq < int(str(after)) if peek else d.c.seq > int(str(after)))
    async with db.tenant(caller.org_id) as conn:
        await agent_exists(conn, caller, agent_id)
        rows = [dict(r) for r in (await conn.execute(query.limit(filters.limit + 1))).mappings()]
        page = rows[: filters.limit]
        if not peek:
            await mark_delivered(conn, caller, agent_id, [r["id"] for r in page if r["delivered_at"] is None])
    next_cursor = encode_cursor([str(page[-1]["seq"])]) if len(rows) > filters.limit else None
    return Page[InboxItem](data=[InboxItem.model_validate(r) for r in page], next_cursor=next_cursor)


async def ack(db: Database, caller: Caller, agent_id: uuid.UUID, body: InboxAck) -> Acked:
    caller.require("write")
    async with db.tenant(caller.org_id) as conn:
        await agent_exists(conn, caller, agent_id)
        stmt = (
            update(d)
            .where(d.c.org_id == caller.org_id, d.c.agent_id == agent_id, d.c.message_id.in_(body.message_ids))
            .where(d.c.acked_at.is_(None))
            .values(acked_at=func.now(), delivered_at=func.coalesce(d.c.delivered_at, func.now()))
        )
        count = (await conn.execute(stmt)).rowcount
    return Acked(acked=count)


async def get(db: Database, caller: Caller, message_id: uuid.UUID) -> AgentMessage:
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        row = (
            (await conn.execute(select(m).where(*visibility.agent_messages(caller), m.c.id == message_id)))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"agent message {message_id} not found")
        return AgentMessage.model_validate(dict(row))

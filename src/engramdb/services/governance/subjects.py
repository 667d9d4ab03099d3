"""What one subject of an erasure holds: its rows in every table, gathered before anything is deleted.

A subject is a user, an agent, a session, a document or a repository. What it holds:

* a **user**: their sessions, the messages in them and their messages elsewhere, their memories, their
  facts and the facts on their entities, their entities, documents (their own and in their
  repositories), repositories, keys and tasks; the jobs of the user and of their sessions;
* an **agent**: the sessions, memories, facts, repositories and documents scoped to it (``agent_id``),
  the messages in its sessions and those it wrote elsewhere, its keys and its mailbox (the messages it
  sent or was sent directly); the jobs of its sessions and the ingests of its documents;
* a **session**: its messages, and the memories and facts drawn from it (``session_id``), whoever they
  belong to: they are derived from it; its jobs;
* a **document**: itself (its chunks go with it) and the jobs that ingested it;
* a **repository**: itself, its documents and their ingest jobs.

What is derived from these rows elsewhere (entities no one else mentions, narratives, summaries, the logs)
is the erasure's to find (``erasure.py``): this module only reads, and locks the subject.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, any_, bindparam, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.pseudonyms import among
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.repo import one_or_404

# What an audit row's ``entity_type`` calls each kind of row an erasure removes (and the keys of
# ``Holdings.ids``).
KINDS = (
    "user",
    "agent",
    "session",
    "message",
    "memory",
    "fact",
    "entity",
    "document",
    "repository",
    "api_key",
    "task",
    "agent_message",
)


@dataclass
class Holdings:
    """The ids of a subject's rows, by kind (see ``KINDS``), and the jobs about them."""

    kind: str
    subject_id: uuid.UUID
    ids: dict[str, list[uuid.UUID]] = field(default_factory=lambda: {k: [] for k in KINDS})
    jobs: list[uuid.UUID] = field(default_factory=list)
    users: set[uuid.UUID] = field(default_factory=set)  # whose rows these are (a legal hold on one stops it)
    elsewhere: list[uuid.UUID] = field(default_factory=list)  # sessions that stay but hold erased messages

    def all_ids(self) -> list[uuid.UUID]:
        return [i for group in self.ids.values() for i in group] + self.jobs


_TABLES = {
    "user": t.user_account,
    "agent": t.agent,
    "session": t.session,
    "document": t.document,
    "repository": t.repository,
}


def _visible(caller: Caller, kind: str) -> list[Any]:
    """Where a key may find a subject of ``kind``: an erasure reaches only what the key sees."""
    if kind == "user":
        return [t.user_account.c.id.in_(visibility.users(caller))]
    rules = {
        "agent": visibility.agents,
        "session": visibility.sessions,
        "document": visibility.documents,
        "repository": visibility.repositories,
    }
    return list(rules[kind](caller))


async def lock(conn: AsyncConnection, caller: Caller, kind: str, subject_id: uuid.UUID) -> None:
    """Lock the subject's row for the erasure; 404 unless the caller's key sees it."""
    tbl = _TABLES[kind]
    query = select(tbl.c.id).where(tbl.c.org_id == caller.org_id, tbl.c.id == subject_id, *_visible(caller, kind))
    await one_or_404(conn, query.with_for_update(), kind, subject_id)


async def gather(conn: AsyncConnection, org_id: uuid.UUID, kind: str, subject_id: uuid.UUID) -> Holdings:
    """The ids of everything the subject holds (see above)."""
    held = Holdings(kind, subject_id)
    s, m, mem, f, e, d, r = t.session, t.message, t.memory, t.fact, t.entity, t.document, t.repository

    async def ids(table: Any, *conds: Any) -> list[uuid.UUID]:
        query = select(table.c.id).where(table.c.org_id == org_id, *conds)
        if table is s:  # a memory written into one meanwhile (extraction) waits, then finds it gone
            query = query.with_for_update()
        return list((await conn.execute(query)).scalars())

    held.ids[kind] = [subject_id]
    if kind in ("user", "agent"):
        column = f"{kind}_id"
        held.ids["session"] = await ids(s, s.c[column] == subject_id)
        sessions = held.ids["session"]
        await _messages(conn, org_id, held, or_(m.c[column] == subject_id, among(m.c.session_id, sessions)))
        held.ids["memory"] = await ids(mem, mem.c[column] == subject_id)
        held.ids["repository"] = await ids(r, r.c[column] == subject_id)
        in_repositories = among(d.c.repository_id, held.ids["repository"])
        held.ids["document"] = await ids(d, or_(d.c[column] == subject_id, in_repositories))
        held.ids["api_key"] = await ids(t.api_key, t.api_key.c[column] == subject_id)
        if kind == "user":
            held.ids["entity"] = await ids(e, e.c.user_id == subject_id)
            on_theirs = or_(among(f.c.subject_id, held.ids["entity"]), among(f.c.object_id, held.ids["entity"]))
            held.ids["fact"] = await ids(f, or_(f.c.user_id == subject_id, on_theirs))
            held.ids["task"] = await ids(t.task, t.task.c.user_id == subject_id)
        else:
            held.ids["fact"] = await ids(f, f.c.agent_id == subject_id)
            am = t.agent_message
            held.ids["agent_message"] = await ids(
                am, or_(am.c.from_agent_id == subject_id, am.c.to_agent_id == subject_id)
            )
    elif kind == "session":
        await _messages(conn, org_id, held, m.c.session_id == subject_id)
        held.ids["memory"] = await ids(mem, mem.c.session_id == subject_id)
        held.ids["fact"] = await ids(f, f.c.session_id == subject_id)
    elif kind == "repository":
        held.ids["document"] = await ids(d, d.c.repository_id == subject_id)
    held.jobs = await _jobs(conn, org_id, held)
    held.users = await _users(conn, org_id, held)
    return held


async def _messages(conn: AsyncConnection, org_id: uuid.UUID, held: Holdings, match: Any) -> None:
    """The held messages, read once for their ids, their speakers (``users``) and the sessions that stay but
    hold some of them (``elsewhere``)."""
    m = t.message
    query = select(m.c.id, m.c.session_id, m.c.user_id).where(m.c.org_id == org_id, match)
    rows = (await conn.execute(query)).all()
    held.ids["message"] = [r.id for r in rows]
    held.users |= {r.user_id for r in rows if r.user_id is not None}
    erased = set(held.ids["session"])
    held.elsewhere = sorted({r.session_id for r in rows} - erased)


async def _users(conn: AsyncConnection, org_id: uuid.UUID, held: Holdings) -> set[uuid.UUID]:
    """The users whose sessions, messages, memories, facts, documents or repositories are held."""
    owned = [
        select(table.c.user_id).where(table.c.org_id == org_id, among(table.c.id, held.ids[kind]))
        for kind, table in (
            ("session", t.session),
            ("memory", t.memory),
            ("fact", t.fact),
            ("document", t.document),
            ("repository", t.repository),
        )
        if held.ids[kind]
    ]
    found = held.users | ({held.subject_id} if held.kind == "user" else set())
    for query in owned:
        found |= {u for u in (await conn.execute(query.distinct())).scalars() if u is not None}
    return found


async def _jobs(conn: AsyncConnection, org_id: uuid.UUID, held: Holdings) -> list[uuid.UUID]:
    """The jobs about the subject: a user's own (narratives, ingests), those of the erased sessions, and
    the ingests of the erased documents (named in the job's result, or in its upload while it waits)."""
    j, up = t.job, t.document_upload
    about = [among(j.c.session_id, held.ids["session"])]
    if held.kind == "user":
        about.append(j.c.user_id == held.subject_id)
    documents, repositories = held.ids["document"], held.ids["repository"]
    if documents or repositories:
        request = up.c.request["job"]
        named = or_(_names(request["document_id"], documents), _names(request["repository_id"], repositories))
        uploads = select(up.c.job_id).where(up.c.org_id == org_id, named)
        ingests = or_(_names(j.c.result["document_id"], documents), j.c.id.in_(uploads))
        about.append((j.c.kind == queue.INGEST_DOCUMENT) & ingests)
    query = select(j.c.id).where(j.c.org_id == org_id, or_(*about))
    return list((await conn.execute(query)).scalars())


def _names(value: Any, ids: list[uuid.UUID]) -> Any:
    """SQL: the JSON ``value`` is one of ``ids`` as a string (one array parameter, however many)."""
    return value.astext == any_(bindparam(None, [str(i) for i in ids], type_=ARRAY(Text)))

"""Who may see what: every rule that confines a query to what the caller's key may see, in one place.

One function per table family returns the caller's WHERE conditions (or, for users, a subquery of ids).
An unbound key sees its whole organization; a key bound to a team, user or agent sees only what lies
inside its binding, failing closed:

* sessions and memories carry their team, user and agent, so a bound key's columns confine them directly;
* messages: exactly those of the sessions the key sees; the memory access log: that of the memories it sees;
* users: a user-bound key sees its user; a team-bound key the team's users; an agent-bound key its
  agent's user;
* facts: those of the users the key sees (and of its agent, for an agent-bound key);
* entities: a user-bound key's own, and any entity a fact it sees names. Only an unbound key or the
  owning user's key may change an entity (:func:`writable_entities`);
* repositories, documents and chunks have no team: a user-bound key sees its user's, a team-bound key its
  team's users', an agent-bound key its agent's;
* jobs: those of the sessions the key sees, and the user-level jobs (narratives) of the users it sees;
* tasks and agent messages: see :func:`tasks` and :func:`agent_messages` (an agent-bound key acts as its
  agent: its tasks and the unassigned pool, its own inbox and what it sent).

:data:`RULES` names the rule of every tenant table that a caller reads directly; a test fails for a
tenant table that has none, so a table added later must be placed here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import ColumnElement, Select, Table, and_, false, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.errors import PermissionDenied
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t

Conditions = list[ColumnElement[bool]]


def _bound_columns(caller: Caller, table: Table) -> Conditions:
    """The org, and each of the key's bindings as a column of ``table`` (sessions, memories). A team-bound
    key also sees the rows of its team's users that name no team, as it sees their documents."""
    conds: Conditions = [table.c.org_id == caller.org_id]
    if caller.team_id is not None:
        conds.append(or_(table.c.team_id == caller.team_id, table.c.user_id.in_(users(caller))))
    for name in ("user_id", "agent_id"):
        value = getattr(caller, name)
        if value is not None:
            conds.append(table.c[name] == value)
    return conds


def sessions(caller: Caller) -> Conditions:
    return _bound_columns(caller, t.session)


def memories(caller: Caller) -> Conditions:
    return _bound_columns(caller, t.memory)


def memory_accesses(caller: Caller) -> Conditions:
    """An access-log row is visible exactly when its memory is (a bound key sees its memories' rows)."""
    log, mem = t.memory_access_log, t.memory
    conds: Conditions = [log.c.org_id == caller.org_id]
    if caller.bound:
        conds.append(log.c.memory_id.in_(select(mem.c.id).where(*memories(caller))))
    return conds


def messages(caller: Caller) -> Conditions:
    """A message is visible exactly when its session is (a bound key sees its sessions' messages)."""
    m, s = t.message, t.session
    conds: Conditions = [m.c.org_id == caller.org_id]
    if caller.bound:
        conds.append(m.c.session_id.in_(select(s.c.id).where(*sessions(caller))))
    return conds


def users(caller: Caller) -> Select[tuple[object]]:
    u = t.user_account
    query = select(u.c.id).where(u.c.org_id == caller.org_id)
    if caller.user_id is not None:
        query = query.where(u.c.id == caller.user_id)
    if caller.team_id is not None:
        query = query.where(u.c.team_id == caller.team_id)
    if caller.agent_id is not None:
        a = t.agent
        query = query.where(
            u.c.id.in_(select(a.c.user_id).where(a.c.org_id == caller.org_id, a.c.id == caller.agent_id))
        )
    return query


def agents(caller: Caller) -> Conditions:
    """The agents a key may act for: its own agent; a user's agents; a team's agents and its users'."""
    a = t.agent
    conds: Conditions = [a.c.org_id == caller.org_id]
    if caller.agent_id is not None:
        conds.append(a.c.id == caller.agent_id)
    if caller.user_id is not None:
        conds.append(a.c.user_id == caller.user_id)
    if caller.team_id is not None:
        conds.append(or_(a.c.team_id == caller.team_id, a.c.user_id.in_(users(caller))))
    return conds


def teams(caller: Caller) -> Conditions:
    """The teams a key may file rows under: its team; a user's team; an agent's team or its user's."""
    tm, u, a = t.team, t.user_account, t.agent
    conds: Conditions = [tm.c.org_id == caller.org_id]
    if caller.team_id is not None:
        conds.append(tm.c.id == caller.team_id)
    if caller.user_id is not None:
        conds.append(tm.c.id.in_(select(u.c.team_id).where(u.c.org_id == caller.org_id, u.c.id == caller.user_id)))
    if caller.agent_id is not None:
        agent = and_(a.c.org_id == caller.org_id, a.c.id == caller.agent_id)
        conds.append(
            or_(
                tm.c.id.in_(select(a.c.team_id).where(agent)),
                tm.c.id.in_(select(u.c.team_id).where(u.c.org_id == caller.org_id, u.c.id.in_(users(caller)))),
            )
        )
    return conds


async def confine_write(
    conn: AsyncConnection,
    caller: Caller,
    *,
    user_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
) -> None:
    """Every scope a write names must lie inside the key's binding, or the write is refused (403): the
    user among those the key sees, the agent among those it may act for, the team among its teams. Each
    write path calls this once the ids are resolved (and known to exist), so a bound key can neither
    write for, nor change what belongs to, anyone it could not read."""
    if not caller.bound:
        return
    checks = (
        ("user", user_id, users(caller).where(t.user_account.c.id == user_id)),
        ("agent", agent_id, select(t.agent.c.id).where(*agents(caller), t.agent.c.id == agent_id)),
        ("team", team_id, select(t.team.c.id).where(*teams(caller), t.team.c.id == team_id)),
    )
    for label, value, query in checks:
        if value is not None and await conn.scalar(query) is None:
            raise PermissionDenied(f"this API key's binding does not reach that {label}; it cannot write for it")


def facts(caller: Caller) -> Conditions:
    f = t.fact
    conds: Conditions = [f.c.org_id == caller.org_id]
    if caller.agent_id is not None:
        conds.append(f.c.agent_id == caller.agent_id)
    if caller.user_id is not None:
        conds.append(f.c.user_id == caller.user_id)
    elif caller.team_id is not None:
        conds.append(f.c.user_id.in_(users(caller)))
    return conds


def entities(caller: Caller) -> Conditions:
    e = t.entity
    f = t.fact
    conds: Conditions = [e.c.org_id == caller.org_id]
    if caller.bound:
        own = e.c.user_id == caller.user_id if caller.user_id is not None else false()
        named = or_(
            e.c.id.in_(select(f.c.subject_id).where(*facts(caller))),
            e.c.id.in_(select(f.c.object_id).where(*facts(caller), f.c.object_id.is_not(None))),
        )
        conds.append(or_(own, named))
    return conds


def writable_entities(caller: Caller) -> Conditions:
    e = t.entity
    conds: Conditions = [e.c.org_id == caller.org_id]
    if caller.bound:
        conds.append(e.c.user_id == caller.user_id if caller.user_id is not None else false())
    return conds


def documents(caller: Caller, table: Table = t.document) -> Conditions:
    """Conditions on ``repository``, ``document`` or ``chunk`` (they share the owner columns)."""
    conds: Conditions = [table.c.org_id == caller.org_id]
    if caller.user_id is not None:
        conds.append(table.c.user_id == caller.user_id)
    elif caller.team_id is not None:
        conds.append(table.c.user_id.in_(users(caller)))
    if caller.agent_id is not None:
        conds.append(table.c.agent_id == caller.agent_id)
    return conds


def repositories(caller: Caller) -> Conditions:
    return documents(caller, t.repository)


def chunks(caller: Caller) -> Conditions:
    return documents(caller, t.chunk)


def jobs(caller: Caller) -> Conditions:
    j = t.job
    conds: Conditions = [j.c.org_id == caller.org_id]
    if caller.bound:
        conds.append(
            or_(
                j.c.session_id.in_(select(t.session.c.id).where(*sessions(caller))),
                and_(j.c.session_id.is_(None), j.c.user_id.in_(users(caller))),
            )
        )
    return conds


def tasks(caller: Caller) -> Conditions:
    """An agent-bound key sees the tasks its agent created, is assigned or claimed, and the unassigned
    ones (the pool it may claim from); a user-bound key its user's tasks; a team-bound key its users'
    tasks and those its team's agents created, are assigned or claimed."""
    k = t.task
    conds: Conditions = [k.c.org_id == caller.org_id]
    if caller.agent_id is not None:
        me = caller.agent_id
        conds.append(or_(k.c.created_by == me, k.c.assigned_to == me, k.c.claimed_by == me, k.c.assigned_to.is_(None)))
    if caller.user_id is not None:
        conds.append(k.c.user_id == caller.user_id)
    if caller.team_id is not None:
        team_agents = select(t.agent.c.id).where(*agents(caller))
        conds.append(
            or_(
                k.c.user_id.in_(users(caller)),
                k.c.created_by.in_(team_agents),
                k.c.assigned_to.in_(team_agents),
                k.c.claimed_by.in_(team_agents),
            )
        )
    return conds


def agent_messages(caller: Caller) -> Conditions:
    """A bound key sees the messages sent by, or delivered to, the agents it may act for (an agent-bound
    key: its own inbox and what it sent; team broadcasts reach it through its inbox)."""
    m, d = t.agent_message, t.agent_message_delivery
    conds: Conditions = [m.c.org_id == caller.org_id]
    if caller.bound:
        mine = select(t.agent.c.id).where(*agents(caller))
        received = select(d.c.message_id).where(d.c.org_id == caller.org_id, d.c.agent_id.in_(mine))
        conds.append(or_(m.c.from_agent_id.in_(mine), m.c.id.in_(received)))
    return conds


def _users_conditions(caller: Caller) -> Conditions:
    u = t.user_account
    return [u.c.org_id == caller.org_id, u.c.id.in_(users(caller))]


RULES: dict[str, Callable[[Caller], Conditions]] = {
    "session": sessions,
    "message": messages,
    "memory": memories,
    "memory_access_log": memory_accesses,
    "user_account": _users_conditions,
    "fact": facts,
    "entity": entities,
    "repository": repositories,
    "document": documents,
    "chunk": chunks,
    "job": jobs,
    "task": tasks,
    "agent_message": agent_messages,
}

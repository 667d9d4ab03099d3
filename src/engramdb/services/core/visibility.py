"""What a bound API key may see of users, facts and entities (rows with no team or agent of their own).

Sessions, messages and memories carry their team, user and agent, so ``Caller.visible`` confines them
directly. Users, facts and entities are confined here, failing closed:

* users: a user-bound key sees its user; a team-bound key the team's users; an agent-bound key its agent's
  user;
* facts: those of the users the key sees (and of its agent, for an agent-bound key);
* entities: a user-bound key's own, and any entity a fact it sees names. Only an unbound key or the
  owning user's key may change an entity.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, false, or_, select

from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t


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


def facts(caller: Caller) -> list[ColumnElement[bool]]:
    f = t.fact
    conds: list[ColumnElement[bool]] = [f.c.org_id == caller.org_id]
    if caller.agent_id is not None:
        conds.append(f.c.agent_id == caller.agent_id)
    if caller.user_id is not None:
        conds.append(f.c.user_id == caller.user_id)
    elif caller.team_id is not None:
        conds.append(f.c.user_id.in_(users(caller)))
    return conds


def entities(caller: Caller) -> list[ColumnElement[bool]]:
    e = t.entity
    f = t.fact
    conds: list[ColumnElement[bool]] = [e.c.org_id == caller.org_id]
    if caller.bound:
        own = e.c.user_id == caller.user_id if caller.user_id is not None else false()
        named = or_(
            e.c.id.in_(select(f.c.subject_id).where(*facts(caller))),
            e.c.id.in_(select(f.c.object_id).where(*facts(caller), f.c.object_id.is_not(None))),
        )
        conds.append(or_(own, named))
    return conds


def writable_entities(caller: Caller) -> list[ColumnElement[bool]]:
    e = t.entity
    conds: list[ColumnElement[bool]] = [e.c.org_id == caller.org_id]
    if caller.bound:
        conds.append(e.c.user_id == caller.user_id if caller.user_id is not None else false())
    return conds

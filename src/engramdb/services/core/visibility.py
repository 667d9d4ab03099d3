"""Who may see what: every rule that confines a query to what the caller's key may see, in one place.

Kept whole because decision 0008 puts every who-sees-what rule in one module: the bindings, the grants
that widen them and the writes they allow are read together or not at all.

One function per table family returns the caller's WHERE conditions (or, for users, a subquery of ids).
An unbound key sees its whole organization; a key bound to a team, user or agent sees only what lies
inside its binding, failing closed:

* a team-bound key's binding is its team: the rows filed under the team, and those of its users and of its
  agents (the agents it may act for: the team's own and its users'), in every table that names them;
* sessions and memories carry their team, user and agent, so a bound key's columns confine them directly;
* messages: exactly those of the sessions the key sees; the memory access log: that of the memories it sees;
* users: a user-bound key sees its user; a team-bound key the team's users; an agent-bound key its
  agent's user;
* facts: those of the key's user or team, and of its agent (for an agent-bound key);
* entities: a user-bound key's own, and any entity a fact it sees names. Only an unbound key or the
  owning user's key may change an entity (:func:`writable_entities`);
* repositories, documents and chunks have no team: a user-bound key sees its user's, a team-bound key its
  team's users' and agents', an agent-bound key its agent's;
* jobs: those of the sessions the key sees, and the user-level jobs (narratives) of the users it sees;
* tasks and agent messages: see :func:`tasks` and :func:`agent_messages` (an agent-bound key acts as its
  agent: its tasks and the unassigned pool, its own inbox and what it sent).
* offloaded contexts: as sessions, by their team, user and agent columns; no grant widens them.

**Grants** (``governance/sharing.py``) widen a bound key's reach, always inside its organization: the
active grants held by its key, user, agent or team (:func:`with_grants` reads them once per request,
with the key) add ``binding OR granted`` to sessions (and so their messages and jobs), memories (and their
access log), facts (and the entities they name), documents and chunks, and repositories. With no grant
the conditions are exactly the binding's. A ``write`` grant also lets its holder change the rows it
reaches: operations that change a row ask with ``write=True``, which leaves read grants out, and
:func:`confine_write` lets a write grant cover a new row for someone outside the binding. A strict team or
app is out of every grant's reach: its rows are never matched, and grants held by its members are inert.

:data:`RULES` names the rule of every tenant table that a caller reads directly; a test fails for a
tenant table that has none, so a table added later must be placed here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    and_,
    any_,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.errors import PermissionDenied
from engramdb.services.core.caller import Caller, Grant, Sharing
from engramdb.storage import tables as t

Conditions = list[ColumnElement[bool]]


# --- bindings --------------------------------------------------------------------------------------------


def _team_rows(caller: Caller, table: Table) -> ColumnElement[bool]:
    """A team-bound key's rows of ``table``: filed under its team, or of its users or its agents."""
    members: Conditions = []
    if "team_id" in table.c:
        members.append(table.c.team_id == caller.team_id)
    members.append(table.c.user_id.in_(users(caller)))
    if "agent_id" in table.c:
        members.append(table.c.agent_id.in_(select(t.agent.c.id).where(*agents(caller))))
    return or_(*members)


def _bound(caller: Caller, table: Table) -> Conditions:
    """The org, and each of the key's bindings as a condition on ``table``'s owner columns."""
    conds: Conditions = [table.c.org_id == caller.org_id]
    if caller.team_id is not None:
        conds.append(_team_rows(caller, table))
    if caller.user_id is not None:
        conds.append(table.c.user_id == caller.user_id)
    if caller.agent_id is not None and "agent_id" in table.c:
        conds.append(table.c.agent_id == caller.agent_id)
    return conds


def sessions(caller: Caller, *, write: bool = False) -> Conditions:
    return _widened(caller, _bound(caller, t.session), t.session, write)


def memories(caller: Caller, *, write: bool = False) -> Conditions:
    return _widened(caller, _bound(caller, t.memory), t.memory, write)


def memory_accesses(caller: Caller) -> Conditions:
    """An access-log row is visible exactly when its memory is (a bound key sees its memories' rows)."""
    log, mem = t.memory_access_log, t.memory
    conds: Conditions = [log.c.org_id == caller.org_id]
    if caller.bound:
        conds.append(log.c.memory_id.in_(select(mem.c.id).where(*memories(caller))))
    return conds


def messages(caller: Caller, *, write: bool = False) -> Conditions:
    """A message is visible exactly when its session is (a bound key sees its sessions' messages)."""
    m, s = t.message, t.session
    conds: Conditions = [m.c.org_id == caller.org_id]
    if caller.bound:
        conds.append(m.c.session_id.in_(select(s.c.id).where(*sessions(caller, write=write))))
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


def facts(caller: Caller, *, write: bool = False) -> Conditions:
    return _widened(caller, _bound(caller, t.fact), t.fact, write)


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


def documents(caller: Caller, table: Table = t.document, *, write: bool = False) -> Conditions:
    """Conditions on ``repository``, ``document`` or ``chunk`` (they share the owner columns)."""
    return _widened(caller, _bound(caller, table), table, write)


def repositories(caller: Caller, *, write: bool = False) -> Conditions:
    return documents(caller, t.repository, write=write)


def chunks(caller: Caller) -> Conditions:
    return documents(caller, t.chunk)


def jobs(caller: Caller, *, write: bool = False) -> Conditions:
    j = t.job
    conds: Conditions = [j.c.org_id == caller.org_id]
    if caller.bound:
        conds.append(
            or_(
                j.c.session_id.in_(select(t.session.c.id).where(*sessions(caller, write=write))),
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


def contexts(caller: Caller) -> Conditions:
    """Offloaded contexts carry their team, user and agent, as sessions do: a bound key's columns confine
    them directly. No grant reaches them (grants name no such resource), for reading or writing."""
    return _bound(caller, t.offloaded_context)


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
    "offloaded_context": contexts,
}


# --- grants ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reach:
    """How the grants on one resource reach the rows of one table: each narrowing a grant may set, as the
    table's column it must equal (``tags`` and ``categories``: a column it must share a value with)."""

    resource: str
    columns: dict[str, str]
    tags: str | None = None
    categories: str | None = None


_MEMORIES = _Reach(
    "memories",
    {"owner_user_id": "user_id", "app_id": "app_id", "session_id": "session_id", "memory_type": "memory_type"},
    tags="tags",
    categories="categories",
)
_SESSIONS = _Reach("sessions", {"owner_user_id": "user_id", "app_id": "app_id", "session_id": "id"}, tags="tags")
_FACTS = _Reach("facts", {"owner_user_id": "user_id", "session_id": "session_id"})
_DOCUMENTS = _Reach(
    "documents", {"owner_user_id": "user_id", "app_id": "app_id", "repository_id": "repository_id"}, tags="tags"
)
_REPOSITORIES = _Reach(
    "repositories", {"owner_user_id": "user_id", "app_id": "app_id", "repository_id": "id"}, tags="tags"
)
NARROWING: dict[str, frozenset[str]] = {
    reach.resource: frozenset(
        [*reach.columns, *(["tags"] if reach.tags else []), *(["categories"] if reach.categories else [])]
    )
    for reach in (_MEMORIES, _SESSIONS, _FACTS, _DOCUMENTS, _REPOSITORIES)
}
"""What a grant on each resource may be narrowed by (``governance/sharing.py`` refuses anything else)."""
_ALL_NARROWING = ("owner_user_id", "app_id", "repository_id", "session_id", "memory_type", "tags", "categories")
_NARROWING_COLUMNS = _ALL_NARROWING  # in Grant's field order, after id, permission and resource


def _sets(grant: Grant) -> set[str]:
    return {name for name in _ALL_NARROWING if getattr(grant, name) not in (None, ())}


# Up to this many owners (say), a semi-join also names them plainly, so the planner can combine index scans
# with the binding's; past it a scan of the organization's rows is as fast (bench/grants.py).
_PREFILTER = 100


def _array(values: Sequence[Any], item: Any) -> ColumnElement[Any]:
    """One array parameter (cast, so it also renders inline for the graph walk's text SQL)."""
    array = ARRAY(item)
    return cast(literal(list(values), array), array)


def _matching(table: Table, reach: _Reach, grants: Sequence[Grant], org_id: uuid.UUID) -> ColumnElement[bool] | None:
    """The rows of ``table`` any of ``grants`` on ``reach.resource`` match, in a few conditions whatever
    their number: grants narrowed by the same columns share array parameters. One column alone is
    ``column = ANY(:values)`` (a thousand grants on a thousand users: one ``user_id = ANY(…)``); more
    columns, or tags and categories, are a semi-join with the grants' rows unnested, one row per tag (and
    category) of each grant, so "any of its tags" holds per grant, and the SQL stays the same size."""
    groups: dict[tuple[tuple[str, ...], bool, bool], set[tuple[Any, ...]]] = {}
    for g in grants:
        if g.resource != reach.resource or not _sets(g) <= NARROWING[reach.resource]:
            continue  # a narrowing this table cannot honour: fail closed (the API refuses such grants)
        fields = tuple(name for name in reach.columns if getattr(g, name) is not None)
        values = tuple(getattr(g, name) for name in fields)
        rows = groups.setdefault((fields, bool(g.tags), bool(g.categories)), set())
        for tag in g.tags or (None,):
            for category in g.categories or (None,):
                rows.add((*values, *([tag] if g.tags else []), *([category] if g.categories else [])))
    if not groups:
        return None
    alternatives: Conditions = []
    for (fields, tagged, categorised), rows in sorted(groups.items(), key=lambda item: item[0]):
        cols = [table.c[reach.columns[name]] for name in fields]
        if tagged and reach.tags:
            cols.append(table.c[reach.tags])
        if categorised and reach.categories:
            cols.append(table.c[reach.categories])
        ordered = sorted(rows)
        if not cols:
            alternatives.append(true())
        elif len(cols) == 1 and len(fields) == 1:
            alternatives.append(cols[0] == any_(_array([r[0] for r in ordered], cols[0].type)))
        elif len(cols) == 1:  # tags (or categories) alone: any of them
            alternatives.append(cols[0].overlap(_array(sorted({r[0] for r in ordered}), Text)))
        else:  # uncorrelated, so it runs once per statement (a hashed subplan), not once per row
            items = [col.type.item_type if isinstance(col.type, ARRAY) else col.type for col in cols]
            arrays = [_array([r[i] for r in ordered], item) for i, item in enumerate(items)]
            unnested = func.unnest(*arrays).table_valued(*(f"c{i}" for i in range(len(cols)))).render_derived()
            inner = table.alias()
            matches = [
                unnested.c[f"c{i}"] == any_(inner.c[col.name])
                if isinstance(col.type, ARRAY)
                else inner.c[col.name] == unnested.c[f"c{i}"]
                for i, col in enumerate(cols)
            ]
            joined = inner.join(unnested, and_(*matches))
            semi: ColumnElement[bool] = table.c.id.in_(
                select(inner.c.id).select_from(joined).where(inner.c.org_id == org_id)
            )
            firsts = sorted({r[0] for r in ordered})
            if fields and len(firsts) <= _PREFILTER:  # the first column again, plainly: an index condition
                semi = and_(cols[0] == any_(_array(firsts, cols[0].type)), semi)
            alternatives.append(semi)
    return or_(*alternatives)


def _not_strict(caller: Caller, table: Table) -> Conditions:
    """Rows of no strict team or app: filed under one, or of its users or agents, no grant reaches them."""
    conds: Conditions = []
    sharing = caller.sharing

    def outside(column: str, ids: Sequence[uuid.UUID] | Select[tuple[object]]) -> None:
        if column in table.c:
            conds.append(or_(table.c[column].is_(None), table.c[column].not_in(ids)))

    if sharing.strict_apps:
        outside("app_id", sorted(sharing.strict_apps))
    if sharing.strict_teams:
        u, a = t.user_account, t.agent
        strict = sorted(sharing.strict_teams)
        members = select(u.c.id).where(u.c.org_id == caller.org_id, u.c.team_id.in_(strict))
        outside("team_id", strict)
        outside("user_id", members)
        outside(
            "agent_id",
            select(a.c.id).where(a.c.org_id == caller.org_id, or_(a.c.team_id.in_(strict), a.c.user_id.in_(members))),
        )
    return conds


def granted(caller: Caller, table: Table, *, write: bool = False) -> ColumnElement[bool] | None:
    """The rows of ``table`` the caller's grants reach (write grants only, with ``write``), or None; built
    once per caller (a request) and table."""
    if not caller.sharing.grants:
        return None
    key = (table.name, write)
    if key not in caller.sharing.compiled:
        caller.sharing.compiled[key] = _granted(caller, table, write)
    found: ColumnElement[bool] | None = caller.sharing.compiled[key]
    return found


def _granted(caller: Caller, table: Table, write: bool) -> ColumnElement[bool] | None:
    held = [g for g in caller.sharing.grants if not write or g.permission == "write"]
    if not held:
        return None
    d, r, org = t.document, t.repository, caller.org_id
    parts: list[ColumnElement[bool] | None] = []
    if table is t.session:
        parts.append(_matching(table, _SESSIONS, held, org))
    elif table is t.memory:
        parts.append(_matching(table, _MEMORIES, held, org))
    elif table is t.fact:
        parts.append(_matching(table, _FACTS, held, org))
    elif table is t.repository:
        parts.append(_matching(table, _REPOSITORIES, held, org))
    elif table is t.document:
        parts.append(_matching(table, _DOCUMENTS, held, org))
        repos = _matching(r, _REPOSITORIES, held, org)  # a repository shared is its documents too
        if repos is not None:
            parts.append(table.c.repository_id.in_(select(r.c.id).where(r.c.org_id == org, repos)))
    elif table is t.chunk:  # chunks carry no tags: through their documents
        docs = granted(caller, d, write=write)
        return None if docs is None else table.c.document_id.in_(select(d.c.id).where(d.c.org_id == org, docs))
    reached = [p for p in parts if p is not None]
    if not reached:
        return None
    return and_(or_(*reached), *_not_strict(caller, table))


def _widened(caller: Caller, own: Conditions, table: Table, write: bool) -> Conditions:
    """A bound caller's own conditions, or those rows its grants reach: ``[org, own OR granted]``. Without
    a grant that reaches ``table`` the conditions are the binding's alone, unchanged."""
    if not caller.bound:
        return own
    extra = granted(caller, table, write=write)
    if extra is None:
        return own
    return [own[0], or_(and_(*own[1:]), extra)]


def shares(org_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """Whether the organization has a grant that is not revoked: a cheap probe authentication adds to its
    own query, so an organization that shares nothing never pays for :func:`with_grants`."""
    g = t.access_grant
    return select(g.c.id).where(g.c.org_id == org_id, g.c.revoked_at.is_(None)).exists()


async def with_grants(conn: AsyncConnection, caller: Caller) -> Caller:
    """The caller with the grants it holds now, read in one indexed query (run once per request, when the
    key is authenticated, so a revoked or expired grant stops at the next request). An unbound key sees
    its whole organization already: it is returned as it is. Grants are held by the key, its user, its
    agent, or a team it belongs to (the key's team, its user's, its agent's or its agent's user's); none
    applies when one of those teams is strict."""
    if not caller.bound:
        return caller
    g, tm, u, a, ap = t.access_grant, t.team, t.user_account, t.agent, t.app
    org = caller.org_id
    principals: list[Select[tuple[Any]]] = []
    if caller.team_id is not None:
        principals.append(select(tm.c.id.label("team_id")).where(tm.c.org_id == org, tm.c.id == caller.team_id))
    if caller.user_id is not None:
        principals.append(select(u.c.team_id).where(u.c.org_id == org, u.c.id == caller.user_id))
    if caller.agent_id is not None:
        agent = and_(a.c.org_id == org, a.c.id == caller.agent_id)
        principals.append(select(a.c.team_id).where(agent))
        principals.append(select(u.c.team_id).where(u.c.org_id == org, u.c.id.in_(select(a.c.user_id).where(agent))))
    mine = union_all(*principals).subquery("mine")
    my_teams = select(mine.c.team_id).where(mine.c.team_id.is_not(None))
    # As one array (an init plan), so each grantee column is an index condition of a bitmap OR.
    teams_array = cast(select(func.array_agg(mine.c.team_id)).scalar_subquery(), ARRAY(g.c.grantee_team_id.type))
    held: Conditions = [g.c.grantee_team_id == any_(teams_array)]
    for column, value in (("grantee_key_id", caller.key_id), ("grantee_user_id", caller.user_id)):
        if value is not None:
            held.append(g.c[column] == value)
    if caller.agent_id is not None:
        held.append(g.c.grantee_agent_id == caller.agent_id)

    def strict(table: Table) -> Any:
        ids = select(func.array_agg(table.c.id)).where(table.c.org_id == org, table.c.isolation == "strict")
        return ids.scalar_subquery()

    fields = [g.c[name] for name in ("id", "permission", "resource", *_NARROWING_COLUMNS)]
    query = select(*fields, strict(tm).label("strict_teams"), strict(ap).label("strict_apps")).where(
        g.c.org_id == org,
        g.c.revoked_at.is_(None),
        or_(g.c.expires_at.is_(None), g.c.expires_at > func.now()),
        or_(*held),
        ~select(tm.c.id).where(tm.c.org_id == org, tm.c.isolation == "strict", tm.c.id.in_(my_teams)).exists(),
    )
    rows = (await conn.execute(query)).all()
    if not rows:
        return caller
    grants = tuple(Grant(*r[:8], tuple(r[8]), tuple(r[9])) for r in rows)  # the columns in Grant's order
    first = rows[0]
    sharing = Sharing(grants=grants, strict_teams=tuple(first[10] or ()), strict_apps=tuple(first[11] or ()))
    return replace(caller, sharing=sharing)


# --- writes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriteTarget:
    """What a new row of ``resource`` will hold, for a write grant to be matched against (its owner user
    is the ``user_id`` the write names)."""

    resource: str
    app_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    repository_id: uuid.UUID | None = None
    memory_type: str | None = None
    tags: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @classmethod
    def of(cls, resource: str, body: Any) -> WriteTarget:
        """From a request body (a session's or memory's): the fields it has."""
        return cls(
            resource=resource,
            app_id=getattr(body, "app_id", None),
            session_id=getattr(body, "session_id", None),
            repository_id=getattr(body, "repository_id", None),
            memory_type=getattr(body, "type", None),
            tags=tuple(getattr(body, "tags", None) or ()),
            categories=tuple(getattr(body, "categories", None) or ()),
        )


def _covers(grant: Grant, target: WriteTarget, user_id: uuid.UUID | None) -> bool:
    if grant.permission != "write" or grant.resource != target.resource:
        return False
    if grant.owner_user_id is not None and grant.owner_user_id != user_id:
        return False
    for name in ("app_id", "session_id", "repository_id", "memory_type"):
        wanted = getattr(grant, name)
        if wanted is not None and wanted != getattr(target, name):
            return False
    return (not grant.tags or bool(set(grant.tags) & set(target.tags))) and (
        not grant.categories or bool(set(grant.categories) & set(target.categories))
    )


async def _write_granted(
    conn: AsyncConnection,
    caller: Caller,
    target: WriteTarget,
    user_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
) -> bool:
    """Whether a write grant covers a new row for ``user_id`` (filed under ``team_id``, which must then be
    the user's own team), outside every strict team and app."""
    if not any(_covers(g, target, user_id) for g in caller.sharing.grants):
        return False
    strict = caller.sharing
    if target.app_id is not None and target.app_id in strict.strict_apps:
        return False
    user_team = None
    if user_id is not None:
        u = t.user_account
        user_team = await conn.scalar(select(u.c.team_id).where(u.c.org_id == caller.org_id, u.c.id == user_id))
    if user_team is not None and user_team in strict.strict_teams:
        return False
    return team_id is None or team_id == user_team or team_id == caller.team_id


async def confine_write(
    conn: AsyncConnection,
    caller: Caller,
    *,
    user_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
    team_id: uuid.UUID | None = None,
    target: WriteTarget | None = None,
) -> None:
    """Every scope a write names must lie inside the key's binding, or the write is refused (403): the
    user among those the key sees, the agent among those it may act for, the team among its teams. Each
    write path calls this once the ids are resolved (and known to exist), so a bound key can neither
    write for, nor change what belongs to, anyone it could not read. A write that says what it will
    write (``target``) may instead be covered by a write grant: for a user (and that user's team) outside
    the binding, never for another agent."""
    if not caller.bound:
        return
    checks = (
        ("user", user_id, users(caller).where(t.user_account.c.id == user_id)),
        ("agent", agent_id, select(t.agent.c.id).where(*agents(caller), t.agent.c.id == agent_id)),
        ("team", team_id, select(t.team.c.id).where(*teams(caller), t.team.c.id == team_id)),
    )
    outside = [label for label, value, query in checks if value is not None and await conn.scalar(query) is None]
    if not outside:
        return
    if target is not None and "agent" not in outside and await _write_granted(conn, caller, target, user_id, team_id):
        return
    raise PermissionDenied(f"this API key's binding does not reach that {outside[0]}; it cannot write for it")

"""Teams, users, agents and apps: the org's directory. One generic CRUD serves all four.

An *app* is the seeds' "apps" (001) and "projects" (003): a named client application or project inside
an organization, to which sessions and memories can be scoped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from engramdb.schemas.common import Page, PageQuery, PublicModel
from engramdb.schemas.directory import Agent, App, Team, User
from engramdb.services.core import audit, visibility
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.repo import one_or_404, page_by_id, raise_conflict, require_row

P = TypeVar("P", bound=PublicModel)


@dataclass(frozen=True)
class Resource(Generic[P]):
    """How one directory resource is stored, checked and shown."""

    kind: str
    table: Table
    public: type[P]
    conflicts: dict[str, str]
    references: dict[str, tuple[Table, str]] = field(default_factory=dict)
    # Columns elsewhere that point here without ON DELETE CASCADE: cleared before a delete.
    referrers: tuple[tuple[Table, str], ...] = ()


TEAMS: Resource[Team] = Resource(
    kind="team",
    table=t.team,
    public=Team,
    conflicts={"uq_team_name": "a team with that name already exists"},
    referrers=(
        (t.user_account, "team_id"),
        (t.agent, "team_id"),
        (t.session, "team_id"),
        (t.memory, "team_id"),
        (t.message, "team_id"),
        (t.agent_message, "to_team_id"),
        (t.offloaded_context, "team_id"),
    ),
)
USERS: Resource[User] = Resource(
    kind="user",
    table=t.user_account,
    public=User,
    conflicts={"uq_user_account_external_id": "a user with that external_id already exists"},
    references={"team_id": (t.team, "team")},
    referrers=((t.agent, "user_id"),),
)
AGENTS: Resource[Agent] = Resource(
    kind="agent",
    table=t.agent,
    public=Agent,
    conflicts={"uq_agent_name": "an agent with that name already exists"},
    references={"team_id": (t.team, "team"), "user_id": (t.user_account, "user")},
    referrers=(
        (t.session, "agent_id"),
        (t.memory, "agent_id"),
        (t.message, "agent_id"),
        (t.repository, "agent_id"),
        (t.document, "agent_id"),
        (t.chunk, "agent_id"),
        (t.task, "created_by"),
        (t.task, "assigned_to"),
        (t.task, "claimed_by"),
        (t.agent_message, "from_agent_id"),
        (t.agent_message, "to_agent_id"),
    ),
)
APPS: Resource[App] = Resource(
    kind="app",
    table=t.app,
    public=App,
    conflicts={"uq_app_name": "an app with that name already exists"},
    referrers=(
        (t.session, "app_id"),
        (t.memory, "app_id"),
        (t.message, "app_id"),
        (t.repository, "app_id"),
        (t.document, "app_id"),
        (t.chunk, "app_id"),
        (t.offloaded_context, "app_id"),
    ),
)


async def _check_references(
    conn: AsyncConnection, res: Resource[Any], org_id: uuid.UUID, values: dict[str, Any]
) -> None:
    for column, (table, what) in res.references.items():
        if values.get(column) is not None:
            await require_row(conn, table, org_id, values[column], what)


async def create(db: Database, caller: Caller, res: Resource[P], body: BaseModel) -> P:
    caller.require("admin")
    values = body.model_dump()
    async with db.tenant(caller.org_id) as conn:
        await _check_references(conn, res, caller.org_id, values)
        stmt = insert(res.table).values(org_id=caller.org_id, id=ids.uuid7(), **values).returning(res.table)
        try:
            row = (await conn.execute(stmt)).mappings().one()
        except IntegrityError as exc:
            raise_conflict(exc, res.conflicts)
        await audit.record(conn, caller, f"{res.kind}.created", res.kind, row["id"])
    return res.public.model_validate(dict(row))


async def get(db: Database, caller: Caller, res: Resource[P], item_id: uuid.UUID) -> P:
    caller.require("admin")
    tbl = res.table
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(
            conn, select(tbl).where(tbl.c.org_id == caller.org_id, tbl.c.id == item_id), res.kind, item_id
        )
    return res.public.model_validate(row)


async def get_user_by_external_id(db: Database, caller: Caller, external_id: str) -> User:
    caller.require("admin")
    u = t.user_account
    async with db.tenant(caller.org_id) as conn:
        query = select(u).where(u.c.org_id == caller.org_id, u.c.external_id == external_id)
        row = await one_or_404(conn, query, "user with external_id", repr(external_id))
    return User.model_validate(row)


async def list_items(db: Database, caller: Caller, res: Resource[P], filters: PageQuery) -> Page[P]:
    """Newest first; ``filters`` is the resource's own model (``TeamFilters`` …), paging only so far."""
    caller.require("admin")
    tbl = res.table
    async with db.tenant(caller.org_id) as conn:
        query = select(tbl).where(tbl.c.org_id == caller.org_id)
        rows, next_cursor = await page_by_id(conn, query, tbl, cursor=filters.cursor, limit=filters.limit)
    return Page[res.public](data=[res.public.model_validate(r) for r in rows], next_cursor=next_cursor)  # type: ignore[name-defined]


async def update_item(db: Database, caller: Caller, res: Resource[P], item_id: uuid.UUID, body: BaseModel) -> P:
    caller.require("admin")
    values = body.model_dump(exclude_unset=True)
    tbl = res.table
    async with db.tenant(caller.org_id) as conn:
        locked = select(tbl.c.id).where(tbl.c.org_id == caller.org_id, tbl.c.id == item_id).with_for_update()
        await one_or_404(conn, locked, res.kind, item_id)
        await _check_references(conn, res, caller.org_id, values)
        if "metadata" in values and values["metadata"] is None:
            values["metadata"] = {}
        required = sorted(name for name, value in values.items() if value is None and not tbl.c[name].nullable)
        if required:
            errors = [{"location": f"body/{name}", "message": "may not be null"} for name in required]
            raise ValidationFailed(
                f"{', '.join(required)} may not be null: leave a field out to keep it", errors=errors
            )
        stmt = (
            update(tbl)
            .where(tbl.c.org_id == caller.org_id, tbl.c.id == item_id)
            .values(**values, updated_at=func.now())
            .returning(tbl)
        )
        try:
            row = (await conn.execute(stmt)).mappings().one()
        except IntegrityError as exc:
            raise_conflict(exc, res.conflicts)
        await audit.record(conn, caller, f"{res.kind}.updated", res.kind, item_id, {"fields": sorted(values)})
    return res.public.model_validate(dict(row))


async def resolve_user(
    conn: AsyncConnection,
    caller: Caller,
    *,
    user_id: uuid.UUID | None,
    external_user_id: str | None,
    target: visibility.WriteTarget | None = None,
) -> uuid.UUID | None:
    """The Engram id of the user a write names: by id (must exist), or by external id (created if new).

    The result must agree with a user-bound key, or a write grant must cover ``target`` for that user;
    creating a user this way is audited.
    """
    u = t.user_account
    if external_user_id is not None:
        found = await conn.scalar(
            select(u.c.id).where(u.c.org_id == caller.org_id, u.c.external_id == external_user_id)
        )
        if found is None:
            if caller.user_id is not None or caller.agent_id is not None:
                bound = "a user" if caller.user_id is not None else "an agent"
                raise PermissionDenied(f"this API key is bound to {bound}; it cannot create users")
            found = ids.uuid7()
            stmt = (
                pg_insert(u)
                .values(
                    org_id=caller.org_id,
                    id=found,
                    external_id=external_user_id,
                    metadata={},
                    team_id=caller.team_id,  # a team-bound key's new user joins its team
                )
                .on_conflict_do_nothing(constraint="uq_user_account_external_id")
                .returning(u.c.id)
            )
            inserted = await conn.scalar(stmt)
            if inserted is None:  # a concurrent write created it first
                found = await conn.scalar(
                    select(u.c.id).where(u.c.org_id == caller.org_id, u.c.external_id == external_user_id)
                )
            else:
                await audit.record(
                    conn, caller, "user.created", "user", found, {"external_id": external_user_id, "implicit": True}
                )
        user_id = found
    elif user_id is not None:
        exists = await conn.scalar(select(u.c.id).where(u.c.org_id == caller.org_id, u.c.id == user_id))
        if exists is None:
            raise NotFound(f"user {user_id} not found")
    user_id = caller.bind("user_id", user_id)
    await visibility.confine_write(conn, caller, user_id=user_id, target=target)
    return user_id


async def user_id_for_filter(db: Database, caller: Caller, external_id: str) -> uuid.UUID | None:
    """:func:`find_external_user` in its own transaction, for transports whose filters take only ids
    (the MCP tools on facts and entities): any key that may read may ask, and nobody is created."""
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        return await find_external_user(conn, caller, external_id)


async def find_external_user(conn: AsyncConnection, caller: Caller, external_id: str) -> uuid.UUID | None:
    """The Engram id of the user with this external id, or None (a lookup for filters: creates nothing)."""
    u = t.user_account
    found: uuid.UUID | None = await conn.scalar(
        select(u.c.id).where(u.c.org_id == caller.org_id, u.c.external_id == external_id)
    )
    return found


async def resolve_scope(
    conn: AsyncConnection, caller: Caller, body: Any, *, resource: str | None = None
) -> dict[str, uuid.UUID | None]:
    """The user, agent, team and app a new session or memory belongs to: each named one must exist in the
    org and agree with the key's bindings (or a write grant on ``resource`` cover what ``body`` writes);
    an unknown ``external_user_id`` creates the user."""
    target = None if resource is None else visibility.WriteTarget.of(resource, body)
    user_id = await resolve_user(
        conn, caller, user_id=body.user_id, external_user_id=body.external_user_id, target=target
    )
    agent_id = caller.bind("agent_id", body.agent_id)
    team_id = caller.bind("team_id", body.team_id)
    await require_row(conn, t.agent, caller.org_id, agent_id, "agent")
    await require_row(conn, t.team, caller.org_id, team_id, "team")
    await require_active_app(conn, caller, body.app_id)
    await visibility.confine_write(conn, caller, user_id=user_id, agent_id=agent_id, team_id=team_id, target=target)
    return {"user_id": user_id, "agent_id": agent_id, "team_id": team_id, "app_id": body.app_id}


async def require_active_app(conn: AsyncConnection, caller: Caller, app_id: uuid.UUID | None) -> None:
    """A write scoped to an app needs the app to exist (404) and to be active: deactivating an app
    (``is_active: false``) stops new sessions, memories, documents and repositories being filed under it
    (409); what it holds stays readable."""
    if app_id is None:
        return
    a = t.app
    active = await conn.scalar(select(a.c.is_active).where(a.c.org_id == caller.org_id, a.c.id == app_id))
    if active is None:
        raise NotFound(f"app {app_id} not found")
    if not active:
        raise Conflict(f"app {app_id} is inactive: reactivate it (is_active: true) to file new data under it")

"""Access grants: who else may read or write a slice of an organization's data (the seed's access policies
and sharing rules), always inside one organization.

A grant gives ``read`` or ``write`` on one resource (memories, sessions, documents, repositories, facts)
to one grantee (a team, a user, an agent or an API key), narrowed by whose rows they are, an app, a
repository, a session, a memory type, tags or categories. They are enforced in one place,
``core/visibility.py``, which reads the caller's grants with its key on every request: a revoked or
expired grant stops at the next request. Here they are made, listed, changed (expiry, description) and
revoked (the row stays, for the record); each change is audited.

A strict team or app (``isolation``) is out of reach: a grant that would reach into one (its rows) or out
of one (held by it, its users, agents or keys) is refused with 409, and grants made before it became
strict stop applying (visibility leaves them out) until it is shared again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import Conflict, ValidationFailed
from engramdb.schemas.common import Page
from engramdb.schemas.sharing import Grant, GrantCreate, GrantFilters, GrantUpdate
from engramdb.services.core import audit, visibility
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching
from engramdb.storage.repo import one_or_404, page_by_id

g = t.access_grant
_NARROWING = ("owner_user_id", "app_id", "repository_id", "session_id", "memory_type", "tags", "categories")
_GRANTEES = {
    "grantee_team_id": (t.team, "team"),
    "grantee_user_id": (t.user_account, "user"),
    "grantee_agent_id": (t.agent, "agent"),
    "grantee_key_id": (t.api_key, "API key"),
}
_TARGETS = {
    "owner_user_id": (t.user_account, "user"),
    "app_id": (t.app, "app"),
    "repository_id": (t.repository, "repository"),
    "session_id": (t.session, "session"),
}


def _public(row: dict[str, Any]) -> Grant:
    now = datetime.now(UTC)
    if row["revoked_at"] is not None:
        status = "revoked"
    elif row["expires_at"] is not None and row["expires_at"] <= now:
        status = "expired"
    else:
        status = "active"
    return Grant.model_validate({**row, "status": status})


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    return value.isoformat() if isinstance(value, datetime) else value


def _check_narrowing(body: GrantCreate) -> None:
    """Only the narrowings the resource's rows can honour (a grant on facts has no tags, say): anything
    else would be silently ignored, and so widen the grant."""
    allowed = visibility.NARROWING[body.resource]
    wrong = [n for n in _NARROWING if getattr(body, n) not in (None, []) and n not in allowed]
    if wrong:
        errors = [
            {"location": f"body/{n}", "message": f"a grant on {body.resource} cannot be narrowed by it"} for n in wrong
        ]
        raise ValidationFailed(
            f"a grant on {body.resource} can be narrowed by {', '.join(sorted(allowed))}, not by {', '.join(wrong)}",
            errors=errors,
        )


async def _row(conn: AsyncConnection, table: Table, org_id: uuid.UUID, row_id: uuid.UUID, what: str) -> dict[str, Any]:
    return await one_or_404(conn, select(table).where(table.c.org_id == org_id, table.c.id == row_id), what, row_id)


async def _user_team(conn: AsyncConnection, org_id: uuid.UUID, user_id: uuid.UUID | None) -> uuid.UUID | None:
    if user_id is None:
        return None
    u = t.user_account
    team: uuid.UUID | None = await conn.scalar(select(u.c.team_id).where(u.c.org_id == org_id, u.c.id == user_id))
    return team


async def _agent_teams(conn: AsyncConnection, org_id: uuid.UUID, agent_id: uuid.UUID | None) -> set[uuid.UUID | None]:
    if agent_id is None:
        return set()
    agent = await _row(conn, t.agent, org_id, agent_id, "agent")
    return {agent["team_id"], await _user_team(conn, org_id, agent["user_id"])}


async def _reach(conn: AsyncConnection, org_id: uuid.UUID, body: GrantCreate) -> tuple[set[Any], set[Any]]:
    """The teams and apps the grant reaches: those its grantee belongs to (out) and those its rows
    belong to (in). Every id it names must exist in the organization (else 404)."""
    teams: set[uuid.UUID | None] = set()
    apps: set[uuid.UUID | None] = {body.app_id}
    for field, (table, what) in _GRANTEES.items():
        value = getattr(body, field)
        if value is None:
            continue
        row = await _row(conn, table, org_id, value, what)
        if table is t.team:
            teams.add(value)
        elif table is t.user_account:
            teams.add(row["team_id"])
        elif table is t.agent:
            teams |= await _agent_teams(conn, org_id, value)
        else:  # an API key: what it is bound to
            if row["revoked_at"] is not None:
                raise Conflict(f"API key {value} is revoked: it can hold no grant")
            if row["team_id"] is None and row["user_id"] is None and row["agent_id"] is None:
                raise Conflict(f"API key {value} is not bound: it sees its whole organization already")
            teams |= {row["team_id"], await _user_team(conn, org_id, row["user_id"])}
            teams |= await _agent_teams(conn, org_id, row["agent_id"])
    for field, (table, what) in _TARGETS.items():
        value = getattr(body, field)
        if value is None:
            continue
        row = await _row(conn, table, org_id, value, what)
        teams.add(row.get("team_id"))  # a user's team, or a session's
        apps.add(row.get("app_id"))
        if "user_id" in row:
            teams.add(await _user_team(conn, org_id, row["user_id"]))
    teams.discard(None)
    apps.discard(None)
    return teams, apps


async def _refuse_strict(conn: AsyncConnection, org_id: uuid.UUID, teams: set[Any], apps: set[Any]) -> None:
    for table, kind, reached in ((t.team, "team", teams), (t.app, "app", apps)):
        if not reached:
            continue
        query = select(table.c.id, table.c.name).where(
            table.c.org_id == org_id, table.c.id.in_(reached), table.c.isolation == "strict"
        )
        strict = (await conn.execute(query.order_by(table.c.name).limit(1))).first()
        if strict is not None:
            raise Conflict(
                f"{kind} '{strict.name}' ({strict.id}) is strict: no grant may reach into or out of it "
                f"(set its isolation to shared to allow sharing)"
            )


async def create(db: Database, caller: Caller, body: GrantCreate) -> Grant:
    """A new grant, in force at once (from the grantee's next request)."""
    caller.require("admin")
    _check_narrowing(body)
    async with db.tenant(caller.org_id) as conn:
        teams, apps = await _reach(conn, caller.org_id, body)
        await _refuse_strict(conn, caller.org_id, teams, apps)
        values = body.model_dump()
        stmt = insert(g).values(org_id=caller.org_id, id=ids.uuid7(), created_by=caller.key_id, **values).returning(g)
        row = dict((await conn.execute(stmt)).mappings().one())
        details = {k: _json(v) for k, v in values.items() if v not in (None, [])}
        details.pop("description", None)
        await audit.record(conn, caller, "grant.created", "grant", row["id"], details)
    return _public(row)


async def get(db: Database, caller: Caller, grant_id: uuid.UUID) -> Grant:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        return _public(await _row(conn, g, caller.org_id, grant_id, "grant"))


async def list_grants(db: Database, caller: Caller, filters: GrantFilters) -> Page[Grant]:
    """Newest first; only those in force unless ``include_inactive``."""
    caller.require("admin")
    conds = [g.c.org_id == caller.org_id]
    conds += matching(g, filters, equal=("resource", "permission", *_GRANTEES, "owner_user_id"))
    if not filters.include_inactive:
        conds += [g.c.revoked_at.is_(None), or_(g.c.expires_at.is_(None), g.c.expires_at > func.now())]
    async with db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(
            conn, select(g).where(*conds), g, cursor=filters.cursor, limit=filters.limit
        )
    return Page[Grant](data=[_public(r) for r in rows], next_cursor=next_cursor)


async def update_grant(db: Database, caller: Caller, grant_id: uuid.UUID, body: GrantUpdate) -> Grant:
    """Move a grant's expiry (null: never) or change its description; a revoked grant stays revoked."""
    caller.require("admin")
    values = body.model_dump(exclude_unset=True)
    async with db.tenant(caller.org_id) as conn:
        locked = select(g).where(g.c.org_id == caller.org_id, g.c.id == grant_id).with_for_update()
        current = await one_or_404(conn, locked, "grant", grant_id)
        if current["revoked_at"] is not None:
            raise Conflict(f"grant {grant_id} is revoked: make a new one instead")
        if not values:
            return _public(current)
        stmt = (
            update(g)
            .where(g.c.org_id == caller.org_id, g.c.id == grant_id)
            .values(**values, updated_at=func.now())
            .returning(g)
        )
        row = dict((await conn.execute(stmt)).mappings().one())
        details: dict[str, Any] = {"fields": sorted(values)}
        if "expires_at" in values:
            details["expires_at"] = values["expires_at"].isoformat() if values["expires_at"] else None
        await audit.record(conn, caller, "grant.updated", "grant", grant_id, details)
    return _public(row)


async def revoke(db: Database, caller: Caller, grant_id: uuid.UUID) -> Grant:
    """Revoke a grant at once: it stops applying from the grantee's next request. The row stays, for the
    record; revoking it again changes nothing."""
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        locked = select(g).where(g.c.org_id == caller.org_id, g.c.id == grant_id).with_for_update()
        current = await one_or_404(conn, locked, "grant", grant_id)
        if current["revoked_at"] is not None:
            return _public(current)
        stmt = (
            update(g)
            .where(g.c.org_id == caller.org_id, g.c.id == grant_id)
            .values(revoked_at=func.now(), updated_at=func.now())
            .returning(g)
        )
        row = dict((await conn.execute(stmt)).mappings().one())
        await audit.record(conn, caller, "grant.revoked", "grant", grant_id, {"resource": row["resource"]})
    return _public(row)

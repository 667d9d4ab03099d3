"""Legal holds: while one is active, retention deletes nothing of its user (or, with no user, of the whole
organization), and the user cannot be erased (409). Archiving goes on (it deletes nothing).

A hold is never deleted: releasing it (``release``, or ``DELETE``) stamps ``released_at`` and keeps it on
record; it goes only with its user, should the user be erased once nothing holds them any more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import ValidationFailed
from engramdb.schemas.common import Page
from engramdb.schemas.retention import LegalHold, LegalHoldCreate, LegalHoldFilters, LegalHoldUpdate
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.repo import one_or_404, page_by_id, require_row

h = t.legal_hold


@dataclass(frozen=True)
class Holds:
    """An organization's active holds, as a retention run reads them once at its start."""

    organization: bool  # an org-wide hold: nothing is deleted
    users: frozenset[uuid.UUID]

    @property
    def any(self) -> bool:
        return self.organization or bool(self.users)


async def active(conn: AsyncConnection, org_id: uuid.UUID) -> Holds:
    rows = (await conn.execute(select(h.c.user_id).where(h.c.org_id == org_id, h.c.released_at.is_(None)))).all()
    return Holds(
        organization=any(r.user_id is None for r in rows),
        users=frozenset(r.user_id for r in rows if r.user_id is not None),
    )


def _public(row: dict[str, Any]) -> LegalHold:
    return LegalHold.model_validate({**row, "active": row["released_at"] is None})


def _one(caller: Caller, hold_id: uuid.UUID) -> Any:
    return select(h).where(h.c.org_id == caller.org_id, h.c.id == hold_id)


async def create(db: Database, caller: Caller, body: LegalHoldCreate) -> LegalHold:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        await require_row(conn, t.user_account, caller.org_id, body.user_id, "user")
        stmt = insert(h).values(org_id=caller.org_id, id=ids.uuid7(), user_id=body.user_id, reason=body.reason)
        row = dict((await conn.execute(stmt.returning(h))).mappings().one())
        await audit.record(
            conn, caller, "legal_hold.created", "legal_hold", row["id"], {"user_id": body.user_id and str(body.user_id)}
        )
    return _public(row)


async def get(db: Database, caller: Caller, hold_id: uuid.UUID) -> LegalHold:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        return _public(await one_or_404(conn, _one(caller, hold_id), "legal hold", hold_id))


async def list_holds(db: Database, caller: Caller, filters: LegalHoldFilters) -> Page[LegalHold]:
    caller.require("admin")
    conds: list[ColumnElement[bool]] = [h.c.org_id == caller.org_id]
    if filters.user_id is not None:
        conds.append(h.c.user_id == filters.user_id)
    if not filters.include_released:
        conds.append(h.c.released_at.is_(None))
    async with db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(
            conn, select(h).where(*conds), h, cursor=filters.cursor, limit=filters.limit
        )
    return Page[LegalHold](data=[_public(r) for r in rows], next_cursor=next_cursor)


async def update_hold(db: Database, caller: Caller, hold_id: uuid.UUID, body: LegalHoldUpdate) -> LegalHold:
    caller.require("admin")
    change = body.model_dump(exclude_unset=True)
    if "reason" in change and change["reason"] is None:
        error = {"location": "body/reason", "message": "may not be null"}
        raise ValidationFailed("reason may not be null: leave a field out to keep it", errors=[error])
    async with db.tenant(caller.org_id) as conn:
        await one_or_404(conn, _one(caller, hold_id).with_for_update(), "legal hold", hold_id)
        if change:
            stmt = update(h).where(h.c.org_id == caller.org_id, h.c.id == hold_id)
            await conn.execute(stmt.values(**change, updated_at=func.now()))
            await audit.record(conn, caller, "legal_hold.updated", "legal_hold", hold_id, {"fields": sorted(change)})
        return _public(await one_or_404(conn, _one(caller, hold_id), "legal hold", hold_id))


async def release(db: Database, caller: Caller, hold_id: uuid.UUID) -> LegalHold:
    """Release a hold (it stays on record). Releasing a released hold changes nothing."""
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, _one(caller, hold_id).with_for_update(), "legal hold", hold_id)
        if row["released_at"] is None:
            stmt = update(h).where(h.c.org_id == caller.org_id, h.c.id == hold_id)
            await conn.execute(stmt.values(released_at=func.now(), updated_at=func.now()))
            await audit.record(conn, caller, "legal_hold.released", "legal_hold", hold_id)
        return _public(await one_or_404(conn, _one(caller, hold_id), "legal hold", hold_id))

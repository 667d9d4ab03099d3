"""The caller's own organization: read it, and set its isolation level (``federated`` lets it join federated
insights; ``strict`` and ``shared`` do not)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from engramdb.errors import PermissionDenied, ValidationFailed
from engramdb.schemas.directory import Organization, OrganizationUpdate
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.database import Database

o = t.organization


def _public(row: Any) -> Organization:
    return Organization.model_validate({**row, "id": row["org_id"]})


async def get(db: Database, caller: Caller) -> Organization:
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        row = (await conn.execute(select(o).where(o.c.org_id == caller.org_id))).mappings().one()
    return _public(row)


async def update_organization(db: Database, caller: Caller, body: OrganizationUpdate) -> Organization:
    """An admin key bound to no team, user or agent: the setting is the whole organization's."""
    caller.require("admin")
    if caller.bound:
        raise PermissionDenied("only an admin key bound to no team, user or agent may change the organization")
    change = body.model_dump(exclude_unset=True)
    if (nulls := sorted(name for name, value in change.items() if value is None)) != []:
        errors = [{"location": f"body/{name}", "message": "may not be null"} for name in nulls]
        raise ValidationFailed(f"{', '.join(nulls)} may not be null: leave a field out to keep it", errors=errors)
    async with db.tenant(caller.org_id) as conn:
        stmt = update(o).where(o.c.org_id == caller.org_id)
        if change:
            stmt = stmt.values(**change, updated_at=func.now())
            row = (await conn.execute(stmt.returning(o))).mappings().one()
            await audit.record(conn, caller, "organization.updated", "organization", caller.org_id, change)
        else:
            row = (await conn.execute(select(o).where(o.c.org_id == caller.org_id))).mappings().one()
    return _public(row)

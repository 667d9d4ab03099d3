from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter

from engramdb import limits
from engramdb.api.deps import CallerDep, CursorQ, DbDep, LimitQ
from engramdb.schemas.audit import AuditEntry, AuditFilters
from engramdb.schemas.common import Page
from engramdb.services.core import audit

router = APIRouter(tags=["audit"])


@router.get(
    "/audit",
    response_model=Page[AuditEntry],
    operation_id="list_audit_entries",
    summary="The organization's audit log, newest first (admin)",
)
async def list_audit_entries(
    db: DbDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: uuid.UUID | None = None,
    key_id: uuid.UUID | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
) -> Page[AuditEntry]:
    filters = AuditFilters(
        action=action, entity_type=entity_type, entity_id=entity_id, key_id=key_id, after=after, before=before
    )
    return await audit.list_entries(db, caller, filters, cursor=cursor, limit=limit)

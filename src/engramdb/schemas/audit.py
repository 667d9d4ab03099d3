"""The audit log: one row per change, written in the change's own transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from engramdb.schemas.common import PageQuery, PublicModel, Timestamp


class AuditEntry(PublicModel):
    id: uuid.UUID
    key_id: uuid.UUID | None
    actor: str
    action: str
    entity_type: str
    entity_id: uuid.UUID | None
    request_id: str | None
    client_addr: str | None
    details: dict[str, object]
    created_at: datetime


class AuditFilters(PageQuery):
    """``GET /audit``, newest first; ``after`` is inclusive, ``before`` exclusive."""

    action: str | None = None
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None
    after: Timestamp | None = None
    before: Timestamp | None = None

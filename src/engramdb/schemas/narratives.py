"""A user's narrative (profile), versioned."""

from __future__ import annotations

import uuid
from datetime import datetime

from engramdb.schemas.common import PageQuery, PublicModel


class Narrative(PublicModel):
    id: uuid.UUID
    user_id: uuid.UUID
    version: int
    content: str
    provider: str
    memory_count: int
    fact_count: int
    created_at: datetime


class NarrativeFilters(PageQuery):
    """Every version of a user's narrative, newest first: paging only."""

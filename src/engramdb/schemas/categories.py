"""Categories memories are filed under: a built-in set plus an organization's own."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from engramdb import limits
from engramdb.schemas.common import NoNul, PageQuery, PublicModel, StrictModel

CategoryName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
]
CategoryDescription = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=limits.MAX_DESCRIPTION_CHARS), NoNul
]


class CategoryCreate(StrictModel):
    name: CategoryName
    description: CategoryDescription = Field(description="What belongs here: memories are matched against it.")


class CategoryUpdate(StrictModel):
    description: CategoryDescription


class Category(PublicModel):
    id: uuid.UUID | None = Field(description="Null for a built-in category.")
    name: str
    description: str
    builtin: bool
    created_at: datetime | None = None


class CategoryFilters(PageQuery):
    """``GET /categories``: built-in and custom categories by name: paging only."""

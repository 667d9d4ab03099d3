"""Filter conditions shared by the list and search queries, so both read the same way."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, func, or_


def content_filters(
    table: Table,
    *,
    tags_any: list[str] | None = None,
    tags_all: list[str] | None = None,
    categories: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    occurred_after: datetime | None = None,
    occurred_before: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """One condition per filter given: tags (any/all), categories (any), metadata containment, and
    half-open time ranges (``after`` inclusive, ``before`` exclusive)."""
    conds: list[ColumnElement[bool]] = []
    if tags_any:
        conds.append(table.c.tags.overlap(tags_any))
    if tags_all:
        conds.append(table.c.tags.contains(tags_all))
    if categories:
        conds.append(table.c.categories.overlap(categories))
    if metadata:
        conds.append(table.c.metadata.contains(metadata))
    for column, after, before in (
        ("created_at", created_after, created_before),
        ("occurred_at", occurred_after, occurred_before),
    ):
        if after is not None:
            conds.append(table.c[column] >= after)
        if before is not None:
            conds.append(table.c[column] < before)
    return conds


def unexpired(table: Table) -> ColumnElement[bool]:
    return or_(table.c.expires_at.is_(None), table.c.expires_at > func.now())

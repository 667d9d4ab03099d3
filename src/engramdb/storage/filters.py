"""Filter conditions shared by the list and search queries, so both read the same way. A list's filter
model (``schemas.*.XFilters``) becomes its conditions here: ``matching`` reads the model's fields."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ARRAY, UUID, BigInteger, ColumnElement, Table, bindparam, exists, func, or_, select
from sqlalchemy.sql.selectable import Join

from engramdb.storage import tables


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


CONTENT_FIELDS = (
    "tags_any",
    "tags_all",
    "categories",
    "metadata",
    "created_after",
    "created_before",
    "occurred_after",
    "occurred_before",
)


def matching(
    table: Table,
    filters: BaseModel,
    *,
    equal: Iterable[str] = (),
    columns: Mapping[str, str] | None = None,
) -> list[ColumnElement[bool]]:
    """A filter model's conditions on ``table``: ``column = value`` for each field named in ``equal`` that
    is set (its column has the field's name unless ``columns`` maps it to another), and ``content_filters``
    for the model's tag, category, metadata and time-range fields. Fields that need a lookup first (an
    ``external_user_id``) or a rule of their own stay with the service."""
    renamed = columns or {}
    conds = [
        table.c[renamed.get(name, name)] == value for name in equal if (value := getattr(filters, name)) is not None
    ]
    content = {name: getattr(filters, name) for name in CONTENT_FIELDS if name in type(filters).model_fields}
    return conds + content_filters(table, **content)


def unexpired(table: Table) -> ColumnElement[bool]:
    return or_(table.c.expires_at.is_(None), table.c.expires_at > func.now())


def in_unexpired_session(message: Table) -> ColumnElement[bool]:
    """A message of a session that has not expired: an expired session's messages are hidden with it."""
    s = tables.session
    expired = select(s.c.id).where(
        s.c.org_id == message.c.org_id, s.c.id == message.c.session_id, s.c.expires_at <= func.now()
    )
    return ~exists(expired)


def at_turns(table: Table, wanted: list[tuple[uuid.UUID, int]]) -> Join:
    """``table`` (messages) joined to the ``wanted`` (session, seq) pairs, sent as two arrays: one
    statement text whatever their number (a row-value IN list is a new statement for every length,
    planned from scratch: 5-8 ms at 50 pairs against about 2.6 ms for this join). The pairs must be
    distinct (a pair given twice joins its row twice); once per statement (the derived table is named
    ``wanted``)."""
    sessions, seqs = zip(*wanted, strict=True) if wanted else ((), ())
    pairs = (
        func.unnest(
            bindparam(None, list(sessions), type_=ARRAY(UUID(as_uuid=True))),
            bindparam(None, list(seqs), type_=ARRAY(BigInteger)),
        )
        .table_valued("session_id", "seq")
        .render_derived(name="wanted")
    )
    return table.join(pairs, (table.c.session_id == pairs.c.session_id) & (table.c.seq == pairs.c.seq))

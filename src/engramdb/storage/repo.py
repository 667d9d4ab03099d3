"""Small query helpers shared by the services: keyset pages, row mapping, constraint errors."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

from sqlalchemy import Select, Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.errors import Conflict, InvalidRequest, NotFound
from engramdb.storage.pagination import BAD_CURSOR, decode_cursor, encode_cursor


async def page_by_id(
    conn: AsyncConnection,
    query: Select[Any],
    table: Table,
    *,
    cursor: str | None,
    limit: int,
    descending: bool = True,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first by (time-ordered) id, ``limit`` rows, and the cursor of the next page if any."""
    if cursor is not None:
        (last,) = decode_cursor(cursor, size=1)
        try:
            last_id = uuid.UUID(str(last))
        except ValueError as exc:
            raise InvalidRequest(BAD_CURSOR) from exc
        query = query.where(table.c.id < last_id if descending else table.c.id > last_id)
    order = table.c.id.desc() if descending else table.c.id.asc()
    rows = [dict(r) for r in (await conn.execute(query.order_by(order).limit(limit + 1))).mappings()]
    next_cursor = encode_cursor([str(rows[limit - 1]["id"])]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def one_or_404(conn: AsyncConnection, query: Select[Any], what: str, ident: object) -> dict[str, Any]:
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise NotFound(f"{what} {ident} not found")
    return dict(row)


def raise_conflict(exc: IntegrityError, messages: Mapping[str, str]) -> NoReturn:
    """Turn a unique-constraint violation into a 409 naming what clashed; anything else re-raises."""
    constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if isinstance(constraint, str) and constraint in messages:
        raise Conflict(messages[constraint]) from exc
    raise exc


async def require_row(
    conn: AsyncConnection, table: Table, org_id: uuid.UUID, row_id: uuid.UUID | None, what: str
) -> None:
    """404 unless ``row_id`` (when given) names a row of ``table`` in this org."""
    if row_id is None:
        return
    found = await conn.scalar(select(table.c.id).where(table.c.org_id == org_id, table.c.id == row_id))
    if found is None:
        raise NotFound(f"{what} {row_id} not found")


_INTERNAL = frozenset({"embedding", "search_tsv", "content_hash", "language"})


def public_columns(table: Table) -> list[Any]:
    """The columns a response may carry: everything but vectors and search internals."""
    return [c for c in table.c if c.name not in _INTERNAL]

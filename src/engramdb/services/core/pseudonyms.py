"""Pseudonyms: what an erasure leaves of the ids it erased in the logs that outlive it.

Deleting a user keeps the audit trail and the delivery log coherent (what happened, in which order, to
one and the same someone) without naming them: every erased id in those rows (the user's, their
sessions', messages', memories', jobs'…) becomes one pseudonym, a random UUID drawn for that erasure and
stored nowhere else. It links the rewritten rows to each other and to nothing that still exists, so the
trail cannot be joined back to the person (a deterministic hash of the id could be: ids are guessable).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, any_, bindparam, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection


def among(column: ColumnElement[Any], ids: Iterable[uuid.UUID]) -> ColumnElement[bool]:
    """SQL: ``column = ANY(ids)``, the ids sent as one array parameter. An erasure names every id a user
    ever had, and an ``IN`` list takes one parameter per id (a statement takes at most 65,535); search's
    look-ups by id use it too, so their statement text is the same however many ids (parsed once)."""
    values = bindparam(None, list(ids), type_=ARRAY(UUID(as_uuid=True)))
    return column == any_(values)


@dataclass(frozen=True)
class Pseudonym:
    value: uuid.UUID
    erased: frozenset[str]  # the erased ids, as text (the way JSON holds them)

    @classmethod
    def draw(cls, erased: Iterable[uuid.UUID]) -> Pseudonym:
        return cls(uuid.uuid4(), frozenset(str(i) for i in erased))

    def json(self, value: Any) -> Any:
        """``value`` (decoded JSON) with every string that is an erased id replaced by the pseudonym."""
        if isinstance(value, str):
            return str(self.value) if value in self.erased else value
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        return value

    def mentioned_in(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """SQL: the JSONB ``column`` holds an erased id as a string, at any depth."""
        name = f"{column.table.name}.{column.name}"
        found = text(
            f"EXISTS (SELECT 1 FROM jsonb_path_query({name}, 'strict $.**') AS v "
            "WHERE jsonb_typeof(v) = 'string' AND v #>> '{}' = ANY (CAST(:erased_ids AS text[])))"
        ).bindparams(erased_ids=sorted(self.erased))
        return and_(found)

    async def rewrite(
        self, conn: AsyncConnection, table: Table, columns: tuple[str, ...], *conds: ColumnElement[bool]
    ) -> int:
        """Replace the erased ids in these JSONB ``columns`` of ``table``'s rows matching ``conds`` (keyed by
        their primary key). The rows are read once, rewritten here and written back by one statement (their
        keys and new values sent as one JSON array): an erasure rewrites thousands. Returns the rows
        rewritten."""
        if not self.erased:
            return 0
        keys = [c.name for c in table.primary_key.columns]
        mentioned = or_(*(self.mentioned_in(table.c[c]) for c in columns))
        query = select(*(table.c[k] for k in keys), *(table.c[c] for c in columns)).where(*conds, mentioned)
        rows = (await conn.execute(query)).mappings().all()
        if not rows:
            return 0
        fields = ", ".join(f"{name} {table.c[name].type.compile(dialect=conn.dialect)}" for name in keys)
        fields += "".join(f", {c} jsonb" for c in columns)
        stmt = text(
            f"UPDATE {table.name} AS t SET {', '.join(f'{c} = v.{c}' for c in columns)} "
            f"FROM jsonb_to_recordset(:rows) AS v({fields}) WHERE {' AND '.join(f't.{k} = v.{k}' for k in keys)}"
        ).bindparams(bindparam("rows", type_=JSONB))
        values = [{**{k: _text(row[k]) for k in keys}, **{c: self.json(row[c]) for c in columns}} for row in rows]
        await conn.execute(stmt, {"rows": values})
        return len(rows)


def _text(value: Any) -> Any:
    """A key column's value as JSON holds it, to be read back by its SQL type (uuid, timestamptz, text)."""
    return value.isoformat() if isinstance(value, datetime) else str(value)

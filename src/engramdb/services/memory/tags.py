"""Tags across the org: sessions, messages, memories, documents and repositories all keep theirs in a
``text[]`` column validated by the one ``Tags`` type, so one listing counts them and one rename moves
them everywhere.

The listing counts only what the caller sees (each table through its own visibility rule); deleted
memories are left out. A rename is an admin's: it reaches every row of the org, writes each memory's
change to its history (a memory is never changed without a trace), and is audited once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, Text, case, func, literal, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.errors import InvalidRequest
from engramdb.schemas.common import Page
from engramdb.schemas.tags import TagCount, TagFilters, TagRename, TagRenameResult, TagTypeCounts
from engramdb.services.core import audit, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.memory import memories
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.pagination import BAD_CURSOR, decode_cursor, encode_cursor
from engramdb.storage.repo import public_columns

# Repositories before documents: the order prune and document deletion lock them in (no deadlock).
TAGGED: tuple[tuple[str, Table], ...] = (
    ("session", t.session),
    ("message", t.message),
    ("memory", t.memory),
    ("repository", t.repository),
    ("document", t.document),
)


def _visible(caller: Caller, kind: str) -> list[ColumnElement[bool]]:
    if kind == "memory":
        return [*visibility.memories(caller), t.memory.c.state != "deleted"]
    return visibility.RULES[kind](caller)


async def list_tags(db: Database, caller: Caller, filters: TagFilters) -> Page[TagCount]:
    """Every tag the caller's items carry, most used first (then by name), with counts per kind."""
    caller.require("read")
    prefix, cursor, limit = filters.prefix, filters.cursor, filters.limit
    parts = []
    for kind, table in TAGGED:
        tag = func.unnest(table.c.tags, type_=Text).label("tag")
        parts.append(select(tag, literal(kind).label("kind")).where(*_visible(caller, kind)))
    tagged = union_all(*parts).subquery()
    query = select(tagged.c.tag, tagged.c.kind, func.count().label("n")).group_by(tagged.c.tag, tagged.c.kind)
    if prefix:
        query = query.where(tagged.c.tag.startswith(prefix, autoescape=True))
    async with db.tenant(caller.org_id) as conn:
        rows = (await conn.execute(query)).all()
    counts: dict[str, dict[str, int]] = {}
    for tag, kind, n in rows:
        counts.setdefault(tag, {})[kind] = n
    ranked = sorted(((-sum(c.values()), tag) for tag, c in counts.items()))
    if cursor is not None:
        last = decode_cursor(cursor, size=2)
        if not (type(last[0]) is int and isinstance(last[1], str)):
            raise InvalidRequest(BAD_CURSOR)
        ranked = [key for key in ranked if key > (-last[0], last[1])]
    page = ranked[:limit]
    next_cursor = encode_cursor([-page[-1][0], page[-1][1]]) if len(ranked) > limit else None
    data = [TagCount(tag=tag, count=-neg, by_type=TagTypeCounts(**counts[tag])) for neg, tag in page]
    return Page[TagCount](data=data, next_cursor=next_cursor)


def _renamed(tags: list[str], old: str, new: str) -> list[str]:
    return list(dict.fromkeys(new if tag == old else tag for tag in tags))


async def _rename_memories(conn: AsyncConnection, caller: Caller, old: str, new: str) -> int:
    mem = t.memory
    query = (
        select(*public_columns(mem))
        .where(mem.c.org_id == caller.org_id, mem.c.tags.contains([old]))
        .order_by(mem.c.id)
        .with_for_update()
    )
    rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    for row in rows:
        change = {"tags": _renamed(row["tags"], old, new)}
        await memories.apply_change(conn, caller, row, change, "updated", reason=f"tag {old!r} renamed to {new!r}")
    return len(rows)


async def rename(db: Database, caller: Caller, body: TagRename) -> TagRenameResult:
    """Rename a tag on every item of the org; an item that already has the new tag keeps one copy."""
    caller.require("admin")
    old, new = body.from_, body.to
    done: dict[str, int] = {}
    async with db.tenant(caller.org_id) as conn:
        for kind, table in TAGGED:
            if kind == "memory":
                done[kind] = await _rename_memories(conn, caller, old, new)
                continue
            tags = table.c.tags
            values: dict[str, Any] = {
                "tags": case(
                    (tags.contains([new]), func.array_remove(tags, literal(old, Text))),
                    else_=func.array_replace(tags, literal(old, Text), literal(new, Text)),
                )
            }
            if "updated_at" in table.c:
                values["updated_at"] = func.now()
            stmt = update(table).where(table.c.org_id == caller.org_id, tags.contains([old])).values(values)
            done[kind] = (await conn.execute(stmt)).rowcount
        details = {"from": old, "to": new, **done}
        await audit.record(conn, caller, "tags.renamed", "tag", None, details)
    return TagRenameResult(tag=new, renamed=TagTypeCounts(**done), total=sum(done.values()))

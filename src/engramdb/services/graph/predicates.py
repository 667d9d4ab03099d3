"""The predicate catalogue: how many objects a subject holds at a time for each predicate.

``one`` (``lives_in``): a new object closes the current fact; ``many`` (``likes``): objects accumulate.
The built-ins (``providers/extraction/predicates.py``, the offline extractor's own list) hold for every
organization without a row; an organization adds its own predicates or redefines a built-in, and deleting
its definition brings the built-in back. Both ways a fact arrives take their cardinality from here: a fact
created over the API without ``single_valued`` (an explicit value wins), and every fact the extractor
proposes (the catalogue wins over the extractor's guess; a predicate it does not name keeps the guess).
A change applies to the facts recorded after it; facts already stored keep their versions.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import limits
from engramdb.errors import InvalidRequest, NotFound
from engramdb.providers.extraction.predicates import BUILTIN
from engramdb.schemas.common import Page
from engramdb.schemas.graph import Predicate, PredicateFilters, PredicateUpdate
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.storage import tables as t
from engramdb.storage.pagination import BAD_CURSOR, decode_cursor, encode_cursor

p = t.predicate


def normalize(predicate: str) -> str:
    """How facts store a predicate: lower case, white space as ``_`` (``Lives In`` is ``lives_in``)."""
    return "_".join(predicate.lower().split())


async def catalogue(conn: AsyncConnection, org_id: uuid.UUID) -> dict[str, bool]:
    """name → single-valued, for every predicate the organization's catalogue names (its own rows win)."""
    rows = (await conn.execute(select(p.c.name, p.c.cardinality).where(p.c.org_id == org_id))).all()
    known = {name: b.cardinality == "one" for name, b in BUILTIN.items()}
    return known | {r.name: r.cardinality == "one" for r in rows}


async def single_valued(conn: AsyncConnection, org_id: uuid.UUID, predicate: str) -> bool | None:
    """Whether the catalogue holds ``predicate`` (normalized) single-valued; None when it does not name it."""
    own = await conn.scalar(select(p.c.cardinality).where(p.c.org_id == org_id, p.c.name == predicate))
    if own is not None:
        return bool(own == "one")
    builtin = BUILTIN.get(predicate)
    return None if builtin is None else builtin.cardinality == "one"


def _public(name: str, row: Any | None) -> Predicate:
    builtin = BUILTIN.get(name)
    if row is None:
        assert builtin is not None
        return Predicate(
            name=name,
            cardinality=builtin.cardinality,
            description=builtin.description,
            source="builtin",
            builtin_cardinality=builtin.cardinality,
            updated_at=None,
        )
    default = builtin.description if builtin is not None else None
    return Predicate(
        name=name,
        cardinality=row.cardinality,
        description=row.description if row.description is not None else default,
        source="organization",
        builtin_cardinality=builtin.cardinality if builtin is not None else None,
        updated_at=row.updated_at,
    )


# --- the API -------------------------------------------------------------------------------------------


async def list_predicates(rt: Runtime, caller: Caller, q: PredicateFilters) -> Page[Predicate]:
    """Built-in and the organization's own predicates, by name."""
    caller.require("read")
    async with rt.db.tenant(caller.org_id) as conn:
        rows = {r.name: r for r in (await conn.execute(select(p).where(p.c.org_id == caller.org_id))).all()}
    found = [_public(name, rows.get(name)) for name in sorted(BUILTIN.keys() | rows.keys())]
    found = [
        x
        for x in found
        if (q.cardinality is None or x.cardinality == q.cardinality) and (q.source is None or x.source == q.source)
    ]
    if q.cursor is not None:
        (last,) = decode_cursor(q.cursor, size=1)
        if not isinstance(last, str):
            raise InvalidRequest(BAD_CURSOR)
        found = [x for x in found if x.name > last]
    page = found[: q.limit]
    next_cursor = encode_cursor([page[-1].name]) if len(found) > q.limit else None
    return Page[Predicate](data=page, next_cursor=next_cursor)


async def get(rt: Runtime, caller: Caller, name: str) -> Predicate:
    caller.require("read")
    key = normalize(name)
    async with rt.db.tenant(caller.org_id) as conn:
        row = (await conn.execute(select(p).where(p.c.org_id == caller.org_id, p.c.name == key))).first()
    if row is None and key not in BUILTIN:
        raise NotFound(f"predicate {key!r} not found")
    return _public(key, row)


async def upsert(rt: Runtime, caller: Caller, name: str, body: PredicateUpdate) -> Predicate:
    """Set the organization's definition of ``name``, whole (admin): a new predicate, or a built-in
    redefined."""
    caller.require("admin")
    key = normalize(name)
    async with rt.db.tenant(caller.org_id) as conn:
        exists = await conn.scalar(select(p.c.name).where(p.c.org_id == caller.org_id, p.c.name == key))
        if exists is None:
            count = await conn.scalar(select(func.count()).select_from(p).where(p.c.org_id == caller.org_id))
            if (count or 0) >= limits.MAX_PREDICATES:
                raise InvalidRequest(f"an organization may define at most {limits.MAX_PREDICATES} predicates")
        values = {"cardinality": body.cardinality, "description": body.description}
        stmt = pg_insert(p).values(org_id=caller.org_id, name=key, **values)
        row = (
            await conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[p.c.org_id, p.c.name], set_={**values, "updated_at": func.now()}
                ).returning(p)
            )
        ).one()
        details = {"name": key, **values, "created": exists is None}
        await audit.record(conn, caller, "predicate.updated", "predicate", None, details)
    return _public(key, row)


async def delete_predicate(rt: Runtime, caller: Caller, name: str) -> None:
    """Remove the organization's definition (admin): a built-in has its default again."""
    caller.require("admin")
    key = normalize(name)
    async with rt.db.tenant(caller.org_id) as conn:
        gone = await conn.scalar(delete(p).where(p.c.org_id == caller.org_id, p.c.name == key).returning(p.c.name))
        if gone is None:
            raise NotFound(f"predicate {key!r} is not defined by this organization")
        await audit.record(conn, caller, "predicate.deleted", "predicate", None, {"name": key})

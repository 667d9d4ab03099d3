"""Entities: people, places, organisations and things, de-duplicated per owner (a user, or the org).

Resolution order, strongest first: the same normalized name or a known alias merges, whatever the
vectors say; otherwise a name whose embedding is within ``SAME_ENTITY`` cosine of an entity of the same
type becomes an alias of it; otherwise a new entity. Merge and split are explicit operations that keep
every fact and memory link.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, literal, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import Conflict, InvalidRequest
from engramdb.providers.extraction import EntityCandidate
from engramdb.schemas.common import Page
from engramdb.schemas.graph import Entity, EntityFilters, EntityMerge, EntitySplit, EntityUpdate
from engramdb.services.core import audit, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.storage import tables as t
from engramdb.storage.filters import matching
from engramdb.storage.repo import one_or_404, page_by_id, public_columns

e = t.entity
SAME_ENTITY = 0.92  # cosine between two names' vectors above which they are one entity (same type only)
_ZERO = uuid.UUID(int=0)
_PUNCT = re.compile(r"[^\w\s'-]+")
_SPACE = re.compile(r"\s+")


def normalize(name: str) -> str:
    """The key names are matched by: case- and accent-insensitive, punctuation ignored, without a leading
    'the'. Letters of every script are kept ("Anna Петрова" and "Anna Иванова" stay two people)."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    folded = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    key = _SPACE.sub(" ", _PUNCT.sub(" ", folded)).strip()
    return key.removeprefix("the ").strip() or name.strip().casefold()


def _owner(user_id: uuid.UUID | None) -> ColumnElement[bool]:
    return e.c.user_id.is_(None) if user_id is None else e.c.user_id == user_id


def _entity(row: dict[str, Any]) -> Entity:
    return Entity.model_validate({**row, "type": row["entity_type"]})


class Resolved(dict[str, uuid.UUID]):
    """Normalized name or alias -> entity id, and what resolving changed, for the caller to audit:
    ``created`` (id -> name) and ``enriched`` (id -> the fields that changed: ``aliases``, ``type``). A
    mention that only counts (``mention_count``) is neither."""

    def __init__(self) -> None:
        super().__init__()
        self.created: dict[uuid.UUID, str] = {}
        self.enriched: dict[uuid.UUID, list[str]] = {}


async def resolve(
    conn: AsyncConnection,
    rt: Runtime,
    org_id: uuid.UUID,
    user_id: uuid.UUID | None,
    candidates: Sequence[EntityCandidate],
    vectors: Sequence[list[float]],
) -> Resolved:
    """The entity id of each candidate (keyed by normalized name and by each alias), creating or
    enriching entities as needed. Candidates of the same normalized name are one entity."""
    out = Resolved()
    for cand, vector in zip(candidates, vectors, strict=True):
        key = normalize(cand.name)
        if not key:
            continue
        alias_keys = sorted({normalize(a) for a in cand.aliases} - {key, ""})
        if key in out:
            continue
        named = (e.c.normalized_name == key) | e.c.alias_keys.contains([key])
        row = await _closest(
            conn, org_id, user_id, named, (e.c.normalized_name == key).desc(), e.c.mention_count.desc()
        )
        if row is None and cand.type != "other":
            distance = e.c.embedding.cosine_distance(vector)
            similar = and_(
                e.c.entity_type == cand.type, e.c.embedding_model == rt.embedder.model, distance <= 1 - SAME_ENTITY
            )
            row = await _closest(conn, org_id, user_id, similar, distance)
            if row is not None:
                alias_keys = sorted(set(alias_keys) | {key})
        if row is None:
            entity_id, inserted = await _insert(conn, rt, org_id, user_id, cand, key, alias_keys, vector)
            if inserted:
                out.created[entity_id] = cand.name.strip()
        else:
            entity_id = row.id
            new_aliases = [
                a for a in (*cand.aliases, cand.name) if normalize(a) in set(alias_keys) - set(row.alias_keys)
            ]
            aliases = list(dict.fromkeys([*row.aliases, *new_aliases]))
            fields = ["aliases"] if aliases != list(row.aliases) else []
            fields += ["type"] if row.entity_type == "other" and cand.type != "other" else []
            if fields:
                out.enriched[entity_id] = sorted({*out.enriched.get(entity_id, []), *fields})
            await conn.execute(
                update(e)
                .where(e.c.org_id == org_id, e.c.id == entity_id)
                .values(
                    mention_count=e.c.mention_count + 1,
                    aliases=aliases,
                    alias_keys=sorted(set(row.alias_keys) | set(alias_keys)),
                    alias_text=" ".join(aliases),
                    entity_type=cand.type if row.entity_type == "other" else row.entity_type,
                    updated_at=func.now(),
                )
            )
        out[key] = entity_id
        for alias in alias_keys:
            out.setdefault(alias, entity_id)
    return out


async def _closest(
    conn: AsyncConnection, org_id: uuid.UUID, user_id: uuid.UUID | None, match: ColumnElement[bool], *order: Any
) -> Any:
    """The owner's live entity that ``match``es, first by ``order``, or None."""
    query = (
        select(e.c.id, e.c.entity_type, e.c.aliases, e.c.alias_keys)
        .where(e.c.org_id == org_id, _owner(user_id), e.c.merged_into.is_(None), match)
        .order_by(*order)
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def _insert(
    conn: AsyncConnection,
    rt: Runtime,
    org_id: uuid.UUID,
    user_id: uuid.UUID | None,
    cand: EntityCandidate,
    key: str,
    alias_keys: list[str],
    vector: list[float],
) -> tuple[uuid.UUID, bool]:
    """The new entity's id, and True; or, when another transaction inserted the name meanwhile, that
    entity's id (its mention counted) and False."""
    aliases = [a for a in dict.fromkeys(cand.aliases) if normalize(a) != key]
    stmt = (
        pg_insert(e)
        .values(
            org_id=org_id,
            id=ids.uuid7(),
            user_id=user_id,
            name=cand.name.strip(),
            normalized_name=key,
            entity_type=cand.type,
            aliases=aliases,
            alias_keys=alias_keys,
            alias_text=" ".join(aliases),
            mention_count=1,
            metadata={},
            embedding=vector,
            embedding_model=rt.embedder.model,
            language=rt.settings.search_language,
        )
        .on_conflict_do_update(
            index_elements=[e.c.org_id, func.coalesce(e.c.user_id, literal(_ZERO)), e.c.normalized_name],
            index_where=e.c.merged_into.is_(None),
            set_={"mention_count": e.c.mention_count + 1, "updated_at": func.now()},
        )
        .returning(e.c.id, literal_column("xmax = 0").label("inserted"))
    )
    found = (await conn.execute(stmt)).one()
    return uuid.UUID(str(found.id)), bool(found.inserted)


async def link_memory(
    conn: AsyncConnection, org_id: uuid.UUID, memory_id: uuid.UUID, entity_ids: set[uuid.UUID]
) -> None:
    if not entity_ids:
        return
    me = t.memory_entity
    await conn.execute(
        pg_insert(me)
        .values([{"org_id": org_id, "memory_id": memory_id, "entity_id": eid} for eid in sorted(entity_ids)])
        .on_conflict_do_nothing()
    )


# --- the API -------------------------------------------------------------------------------------------


async def get(rt: Runtime, caller: Caller, entity_id: uuid.UUID) -> Entity:
    caller.require("read")
    async with rt.db.tenant(caller.org_id) as conn:
        row = await fetch(conn, caller, entity_id)
    return _entity(row)


async def fetch(
    conn: AsyncConnection, caller: Caller, entity_id: uuid.UUID, *, lock: bool = False, write: bool = False
) -> dict[str, Any]:
    """The entity if the caller may see it (``write``: may change it), else 404."""
    conds = visibility.writable_entities(caller) if write else visibility.entities(caller)
    query = select(*public_columns(e)).where(*conds, e.c.id == entity_id)
    return await one_or_404(conn, query.with_for_update() if lock else query, "entity", entity_id)


async def list_entities(rt: Runtime, caller: Caller, filters: EntityFilters) -> Page[Entity]:
    """Entities newest first; ``q`` matches names and aliases (prefix-insensitive substring)."""
    caller.require("read")
    conds = [*visibility.entities(caller), e.c.merged_into.is_(None)]
    conds += matching(e, filters, equal=("user_id", "type"), columns={"type": "entity_type"})
    if filters.q:
        like = f"%{normalize(filters.q)}%"
        conds.append(e.c.normalized_name.like(like) | func.array_to_string(e.c.alias_keys, " ").like(like))
    async with rt.db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(
            conn, select(*public_columns(e)).where(*conds), e, cursor=filters.cursor, limit=filters.limit
        )
    return Page[Entity](data=[_entity(r) for r in rows], next_cursor=next_cursor)


async def update_entity(rt: Runtime, caller: Caller, entity_id: uuid.UUID, body: EntityUpdate) -> Entity:
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        row = await fetch(conn, caller, entity_id, lock=True, write=True)
        values: dict[str, Any] = {"updated_at": func.now()}
        if body.name is not None:
            values["name"] = body.name
            values["normalized_name"] = normalize(body.name)
            if values["normalized_name"] != row["normalized_name"]:
                await _name_free(conn, caller, row["user_id"], values["normalized_name"])
        if body.type is not None:
            values["entity_type"] = body.type
        if body.aliases is not None:
            values["aliases"] = body.aliases
            values["alias_keys"] = sorted({normalize(a) for a in body.aliases})
            values["alias_text"] = " ".join(body.aliases)
        if body.summary is not None:
            values["summary"] = body.summary
        if body.metadata is not None:
            values["metadata"] = body.metadata
        result = await conn.execute(
            update(e)
            .where(e.c.org_id == caller.org_id, e.c.id == entity_id)
            .values(**values)
            .returning(*public_columns(e))
        )
        new = dict(result.mappings().one())
        await audit.record(conn, caller, "entity.updated", "entity", entity_id, {"name": row["name"]})
    return _entity(new)


async def _name_free(conn: AsyncConnection, caller: Caller, user_id: uuid.UUID | None, key: str) -> None:
    taken = await conn.scalar(
        select(e.c.id).where(
            e.c.org_id == caller.org_id, _owner(user_id), e.c.merged_into.is_(None), e.c.normalized_name == key
        )
    )
    if taken is not None:
        raise Conflict(f"entity {taken} already has that name: merge the two instead (POST /v1/entities/{taken}/merge)")


async def merge(rt: Runtime, caller: Caller, entity_id: uuid.UUID, body: EntityMerge) -> Entity:
    """Fold ``body.entity_ids`` into ``entity_id``: their names become aliases; facts and memory links move."""
    caller.require("write")
    sources = [s for s in dict.fromkeys(body.entity_ids) if s != entity_id]
    if not sources:
        raise InvalidRequest("name at least one other entity to merge into this one")
    async with rt.db.tenant(caller.org_id) as conn:
        target = await fetch(conn, caller, entity_id, lock=True, write=True)
        if target["merged_into"] is not None:
            raise Conflict(f"entity {entity_id} was merged into {target['merged_into']}; merge into that one")
        rows = [await fetch(conn, caller, s, lock=True, write=True) for s in sources]
        for row in rows:
            if row["merged_into"] is not None:
                raise Conflict(f"entity {row['id']} was already merged into {row['merged_into']}")
            if row["user_id"] != target["user_id"]:
                raise InvalidRequest("entities of different users cannot be merged")
        aliases = list(target["aliases"])
        for row in rows:
            aliases += [row["name"], *row["aliases"]]
        aliases = [a for a in dict.fromkeys(aliases) if normalize(a) != target["normalized_name"]]
        f = t.fact
        me = t.memory_entity
        for row in rows:
            await conn.execute(
                update(f).where(f.c.org_id == caller.org_id, f.c.subject_id == row["id"]).values(subject_id=entity_id)
            )
            await conn.execute(
                update(f).where(f.c.org_id == caller.org_id, f.c.object_id == row["id"]).values(object_id=entity_id)
            )
            await conn.execute(
                text(
                    "INSERT INTO memory_entity (org_id, memory_id, entity_id) SELECT org_id, memory_id, :target "
                    "FROM memory_entity WHERE org_id = :org AND entity_id = :source ON CONFLICT DO NOTHING"
                ),
                {"target": entity_id, "org": caller.org_id, "source": row["id"]},
            )
            await conn.execute(delete(me).where(me.c.org_id == caller.org_id, me.c.entity_id == row["id"]))
            await conn.execute(
                update(e)
                .where(e.c.org_id == caller.org_id, e.c.id == row["id"])
                .values(merged_into=entity_id, updated_at=func.now())
            )
        result = await conn.execute(
            update(e)
            .where(e.c.org_id == caller.org_id, e.c.id == entity_id)
            .values(
                aliases=aliases,
                alias_keys=sorted({normalize(a) for a in aliases}),
                alias_text=" ".join(aliases),
                mention_count=e.c.mention_count + sum(r["mention_count"] for r in rows),
                updated_at=func.now(),
            )
            .returning(*public_columns(e))
        )
        new = dict(result.mappings().one())
        await audit.record(conn, caller, "entity.merged", "entity", entity_id, {"merged": [str(s) for s in sources]})
    return _entity(new)


async def split(rt: Runtime, caller: Caller, entity_id: uuid.UUID, body: EntitySplit) -> Entity:
    """Make a new entity named ``body.name`` out of ``entity_id``: the aliases, facts and memory links
    named in the body move to it; everything else stays."""
    caller.require("write")
    key = normalize(body.name)
    async with rt.db.tenant(caller.org_id) as conn:
        source = await fetch(conn, caller, entity_id, lock=True, write=True)
        if key == source["normalized_name"]:
            raise InvalidRequest("the new entity needs a name other than the original's")
        await _name_free(conn, caller, source["user_id"], key)
        moving = {normalize(a) for a in body.aliases} | {key}
        keep = [a for a in source["aliases"] if normalize(a) not in moving]
        (vector,) = await rt.embedder.embed_batch([body.name], kind="passage")
        new_id = ids.uuid7()
        await conn.execute(
            insert(e).values(
                org_id=caller.org_id,
                id=new_id,
                user_id=source["user_id"],
                name=body.name,
                normalized_name=key,
                entity_type=body.type or source["entity_type"],
                aliases=body.aliases,
                alias_keys=sorted({normalize(a) for a in body.aliases} - {key}),
                alias_text=" ".join(body.aliases),
                mention_count=1,
                metadata={},
                embedding=vector,
                embedding_model=rt.embedder.model,
                language=rt.settings.search_language,
            )
        )
        await conn.execute(
            update(e)
            .where(e.c.org_id == caller.org_id, e.c.id == entity_id)
            .values(
                aliases=keep,
                alias_keys=sorted({normalize(a) for a in keep}),
                alias_text=" ".join(keep),
                updated_at=func.now(),
            )
        )
        f = t.fact
        me = t.memory_entity
        if body.fact_ids:
            for column in (f.c.subject_id, f.c.object_id):
                await conn.execute(
                    update(f)
                    .where(*visibility.facts(caller), f.c.id.in_(body.fact_ids), column == entity_id)
                    .values({column.name: new_id})
                )
        if body.memory_ids:
            await conn.execute(
                update(me)
                .where(me.c.org_id == caller.org_id, me.c.entity_id == entity_id, me.c.memory_id.in_(body.memory_ids))
                .values(entity_id=new_id)
            )
        row = await fetch(conn, caller, new_id)
        await audit.record(conn, caller, "entity.split", "entity", entity_id, {"new_entity_id": str(new_id)})
    return _entity(row)

"""Facts and entities in ``/v1/search``, and the graph boost.

Facts and entities are retrieved like messages and memories (a vector and a keyword retriever, each
returning its top ``n``) and services/search/hybrid.py fuses all four types by one reciprocal rank fusion, so a
fact competes with the turn it was extracted from. They differ in scale: a user holds far fewer facts and
entities than turns and they have no HNSW index, so the vector side always scans its scope exactly; their
texts are a short statement or a name, so the keyword side ranks by ``ts_rank`` rather than BM25.

Only present knowledge is searched: facts believed now and valid now, entities not merged into another.
A superseded fact answers ``GET /v1/facts?known_at=``, not a search for what is true.

The graph boost: a query that names an entity ("where does Alice live?") is usually about it, so the
memories linked to it, the facts about it and the entity itself rise by ``weights.graph``. Finding the
named entities and the candidate memories linked to them is one query on indexed columns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSQUERY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.schemas.search import SearchFilters, SearchRequest
from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.graph import entities, facts
from engramdb.storage import tables as t
from engramdb.storage.vector_type import Embedding

KINDS = {"facts": "fact", "entities": "entity"}  # request type -> result type
LINKED = frozenset({"memory", "fact", "entity"})  # the result types the graph boost can lift
RESULT_FIELDS = (
    "subject",
    "predicate",
    "object",
    "subject_id",
    "object_id",
    "valid_from",
    "valid_until",
    "entity_type",
    "aliases",
)
_MAX_NAME_WORDS = 6  # the longest entity name (in words) the graph boost looks for in a query
_SHARED = uuid.UUID(int=0)  # how ux_entity_name keys an org-wide entity's owner (coalesce(user_id, zero))

f, e, me = t.fact, t.entity, t.memory_entity
# Candidates carry what fusion and the boost need; the winners are read whole by ``full_rows``.
_RANKING: dict[str, tuple[ColumnElement[Any], ...]] = {
    "fact": (
        f.c.id,
        f.c.subject_id,
        f.c.object_id,
        f.c.valid_from,
        f.c.valid_until,
        f.c.recorded_at.label("created_at"),
    ),
    "entity": (e.c.id, e.c.created_at),
}


@dataclass(frozen=True)
class Scope:
    """One retriever's rows: a result type, its table, and every condition of the request on it."""

    kind: str
    table: Table
    conds: list[ColumnElement[bool]]


def scopes(caller: Caller, req: SearchRequest, user_id: uuid.UUID | None) -> list[Scope]:
    """The fact and entity retrievers the request asks for. Of the filters, ``metadata`` and
    ``created_after``/``created_before`` (a fact's ``recorded_at``) apply; facts and entities carry no
    tags, so a tag filter leaves them out; the rest are for messages or memories only."""
    if req.filters.tags_any or req.filters.tags_all:
        return []
    out = []
    if "facts" in req.types:
        conds = [*visibility.facts(caller), *facts.current_now()]
        for column, value in (("user_id", user_id), ("agent_id", req.agent_id), ("session_id", req.session_id)):
            if value is not None:
                conds.append(f.c[column] == value)
        out.append(Scope("fact", f, [*conds, *_filters(f.c.metadata, f.c.recorded_at, req.filters)]))
    if "entities" in req.types:
        conds = [*_entity_scope(caller, user_id), *_filters(e.c.metadata, e.c.created_at, req.filters)]
        out.append(Scope("entity", e, conds))
    return out


def _entity_scope(caller: Caller, user_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
    """Live entities the caller sees; for a user, theirs and the org's shared ones. The owner is tested
    as ``ux_entity_name`` indexes it, so a name lookup within a user's scope is an index scan."""
    conds = [*visibility.entities(caller), e.c.merged_into.is_(None)]
    if user_id is not None:
        conds.append(func.coalesce(e.c.user_id, _SHARED).in_([_SHARED, user_id]))
    return conds


def _filters(
    metadata: ColumnElement[Any], created_at: ColumnElement[Any], filters: SearchFilters
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if filters.metadata:
        conds.append(metadata.contains(filters.metadata))
    if filters.created_after is not None:
        conds.append(created_at >= filters.created_after)
    if filters.created_before is not None:
        conds.append(created_at < filters.created_before)
    return conds


async def vector(conn: AsyncConnection, rt: Runtime, scope: Scope, qvec: list[float], n: int) -> list[dict[str, Any]]:
    """The ``n`` rows closest to ``qvec`` by an exact scan of the scope (vectors of the configured model)."""
    table = scope.table
    distance = cast(table.c.embedding, Embedding(rt.embedder.dimensions)).cosine_distance(qvec)
    query = (
        select(*_RANKING[scope.kind], (1 - distance).label("similarity"))
        .where(*scope.conds, table.c.embedding_model == rt.embedder.model)
        .order_by(distance, table.c.id)
        .limit(n)
    )
    return [dict(r) for r in (await conn.execute(query)).mappings().all()]


async def keyword(conn: AsyncConnection, rt: Runtime, scope: Scope, query: str, n: int) -> list[dict[str, Any]]:
    """The ``n`` rows matching any of the query's words, best ``ts_rank`` first: a question rarely shares
    all its words with the statement that answers it."""
    table = scope.table
    language: ColumnElement[Any] = literal_column(f"'{rt.settings.search_language}'::regconfig")
    every_word = cast(func.plainto_tsquery(language, literal(query)), Text)
    any_word = cast(func.replace(every_word, literal(" & "), literal(" | ")), TSQUERY)
    rank = func.ts_rank(table.c.search_tsv, any_word)
    statement = (
        select(*_RANKING[scope.kind], rank.label("rank"))
        .where(*scope.conds, table.c.search_tsv.op("@@")(any_word))
        .order_by(rank.desc(), table.c.id)
        .limit(n)
    )
    return [dict(r) for r in (await conn.execute(statement)).mappings().all()]


async def full_rows(conn: AsyncConnection, kind: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """The winners of one type, shaped as search results (``content``, ``created_at``, ``tags`` ...)."""
    if kind == "fact":
        query = select(
            f.c.id,
            f.c.statement.label("content"),
            f.c.session_id,
            f.c.user_id,
            f.c.recorded_at.label("created_at"),
            f.c.metadata,
            *(
                f.c[c]
                for c in ("subject", "predicate", "object", "subject_id", "object_id", "valid_from", "valid_until")
            ),
        ).where(f.c.id.in_(ids))
        return {r["id"]: {**r, "tags": []} for r in (await conn.execute(query)).mappings().all()}
    query = select(e.c.id, e.c.name, e.c.aliases, e.c.entity_type, e.c.user_id, e.c.created_at, e.c.metadata)
    rows = (await conn.execute(query.where(e.c.id.in_(ids)))).mappings().all()
    return {r["id"]: {**r, "content": _entity_text(r["name"], r["aliases"]), "tags": []} for r in rows}


def _entity_text(name: str, aliases: list[str]) -> str:
    return f"{name} ({', '.join(aliases)})" if aliases else name


def name_keys(query: str) -> list[str]:
    """Every phrase of up to ``_MAX_NAME_WORDS`` words of the query, normalized as entity names are, so
    an entity is named when its normalized name or an alias key equals one of them (whole words only).
    A possessive ("Alice's") also names its owner."""
    words = [w.strip("'-") for w in entities.normalize(query).split()]
    words = [w for w in words if w]
    keys: set[str] = set()
    for start in range(len(words)):
        for end in range(start + 1, min(len(words), start + _MAX_NAME_WORDS) + 1):
            phrase = " ".join(words[start:end])
            keys.update((phrase, phrase.removesuffix("'s").rstrip("'")))
    return sorted(k for k in keys if len(k) > 1)


async def graph_links(
    conn: AsyncConnection,
    caller: Caller,
    req: SearchRequest,
    user_id: uuid.UUID | None,
    candidates: Iterable[tuple[str, Mapping[str, Any]]],
) -> set[tuple[str, uuid.UUID]] | None:
    """The (type, id) of the candidates tied to an entity the query names: the memories linked to one,
    the facts whose subject or object is one, and those entities. None when the boost is off or no
    candidate could be lifted (then no query runs)."""
    lifted = [(kind, row) for kind, row in candidates if kind in LINKED]
    if not req.weights.graph or not lifted:
        return None
    keys = name_keys(req.query)
    if not keys:
        return set()
    names = bindparam("name_keys", keys, type_=ARRAY(Text))
    named = (
        select(e.c.id)
        .where(*_entity_scope(caller, user_id), (e.c.normalized_name == any_(names)) | e.c.alias_keys.overlap(names))
        .cte("named")
    )
    parts = [select(literal("entity").label("kind"), named.c.id.label("id"))]
    memory_ids = [row["id"] for kind, row in lifted if kind == "memory"]
    if memory_ids:
        wanted = bindparam("memory_ids", memory_ids, type_=ARRAY(UUID(as_uuid=True)))
        parts.append(
            select(literal("memory"), me.c.memory_id).where(
                me.c.org_id == caller.org_id, me.c.memory_id == any_(wanted), me.c.entity_id.in_(select(named.c.id))
            )
        )
    found = (await conn.execute(union_all(*parts) if len(parts) > 1 else parts[0])).all()
    named_ids = {r.id for r in found if r.kind == "entity"}
    linked = {(str(r.kind), r.id) for r in found}
    linked.update(
        ("fact", row["id"])
        for kind, row in lifted
        if kind == "fact" and (row["subject_id"] in named_ids or row["object_id"] in named_ids)
    )
    return linked

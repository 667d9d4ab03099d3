"""The entity graph: facts whose object is an entity are its edges (walked in both directions).

Neighbours to depth k and paths between two entities are recursive CTEs over the facts believed at
``known_at`` (now by default) and valid at ``valid_at`` (now by default), so the graph answers for any
point in time just as facts do.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import TextClause, and_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import limits
from engramdb.schemas.graph import Entity, GraphEdge, GraphPath, Neighbourhood, Paths
from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.graph import entities
from engramdb.storage import tables as t
from engramdb.storage.repo import public_columns

_EDGES = """
edges AS MATERIALIZED (
  SELECT id, subject_id AS a, object_id AS b FROM fact WHERE {cond}
  UNION ALL
  SELECT id, object_id AS a, subject_id AS b FROM fact WHERE {cond}
)"""
# ``{visible}``: the caller's visibility of facts (``visibility.facts``), rendered by :func:`_sql`.
_COND = """org_id = :org AND object_id IS NOT NULL
  AND ({visible})
  AND recorded_at <= CAST(:known AS timestamptz)
  AND (superseded_at IS NULL OR superseded_at > CAST(:known AS timestamptz))
  AND (valid_from IS NULL OR valid_from <= CAST(:valid AS timestamptz))
  AND (valid_until IS NULL OR valid_until > CAST(:valid AS timestamptz))"""

_NEIGHBOURS = (
    "WITH RECURSIVE"
    + _EDGES.format(cond=_COND)
    + """,
walk (entity_id, depth) AS (
  SELECT CAST(:start AS uuid), 0
  UNION
  SELECT edges.b, walk.depth + 1 FROM walk JOIN edges ON edges.a = walk.entity_id WHERE walk.depth < :depth
)
SELECT entity_id, min(depth) AS depth FROM walk GROUP BY entity_id ORDER BY 2, 1 LIMIT :max_nodes"""
)

_DISTANCE = (
    "WITH RECURSIVE"
    + _EDGES.format(cond=_COND)
    + """,
walk (entity_id, depth) AS (
  SELECT CAST(:start AS uuid), 0
  UNION
  SELECT edges.b, walk.depth + 1 FROM walk JOIN edges ON edges.a = walk.entity_id
  WHERE walk.depth < :depth AND walk.entity_id <> CAST(:target AS uuid)
)
SELECT min(depth) FROM walk WHERE entity_id = CAST(:target AS uuid)"""
)

# Shortest paths only (``:depth`` is the distance found first), over one link per pair of entities, in
# breadth-first order without sorting, so LIMIT stops the walk early: enumerating every simple path of a
# dense graph grows as its degree to the power of the depth.
_PATHS = (
    "WITH RECURSIVE"
    + _EDGES.format(cond=_COND)
    + """,
links AS MATERIALIZED (SELECT a, b, (array_agg(id ORDER BY id))[1] AS id FROM edges GROUP BY a, b),
walk (node, nodes, facts, depth) AS (
  SELECT CAST(:start AS uuid), ARRAY[CAST(:start AS uuid)], CAST(ARRAY[] AS uuid[]), 0
  UNION ALL
  SELECT links.b, walk.nodes || links.b, walk.facts || links.id, walk.depth + 1
  FROM walk JOIN links ON links.a = walk.node
  WHERE walk.depth < :depth AND walk.node <> CAST(:target AS uuid) AND NOT links.b = ANY(walk.nodes)
)
SELECT nodes, facts FROM walk WHERE node = CAST(:target AS uuid) AND depth = :depth LIMIT :max_paths"""
)


def _sql(template: str, caller: Caller, conn: AsyncConnection) -> TextClause:
    """``template`` walking only the facts the caller sees: the one rule of ``visibility.facts`` (its
    bindings and grants), rendered inline (its values are ids the server holds, quoted by SQLAlchemy)."""
    visible = and_(*visibility.facts(caller)).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return text(template.format(visible=visible))


def _params(caller: Caller, valid_at: datetime | None, known_at: datetime | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"org": caller.org_id, "valid": valid_at or now, "known": known_at or now}


async def _entities(conn: AsyncConnection, caller: Caller, entity_ids: list[uuid.UUID]) -> dict[uuid.UUID, Entity]:
    e = t.entity
    rows = (
        await conn.execute(select(*public_columns(e)).where(*visibility.entities(caller), e.c.id.in_(entity_ids)))
    ).mappings()
    return {r["id"]: Entity.model_validate({**r, "type": r["entity_type"]}) for r in rows}


async def _edges(conn: AsyncConnection, caller: Caller, fact_ids: list[uuid.UUID]) -> dict[uuid.UUID, GraphEdge]:
    f = t.fact
    rows = (
        await conn.execute(
            select(
                f.c.id.label("fact_id"),
                f.c.subject_id.label("source_id"),
                f.c.object_id.label("target_id"),
                f.c.predicate,
                f.c.statement,
                f.c.weight,
                f.c.valid_from,
                f.c.valid_until,
            ).where(f.c.org_id == caller.org_id, f.c.id.in_(fact_ids))
        )
    ).mappings()
    return {r["fact_id"]: GraphEdge.model_validate(dict(r)) for r in rows}


async def neighbours(
    rt: Runtime,
    caller: Caller,
    entity_id: uuid.UUID,
    *,
    depth: int,
    valid_at: datetime | None = None,
    known_at: datetime | None = None,
) -> Neighbourhood:
    caller.require("read")
    params = _params(caller, valid_at, known_at)
    async with rt.db.tenant(caller.org_id) as conn:
        await entities.fetch(conn, caller, entity_id)
        rows = (
            await conn.execute(
                _sql(_NEIGHBOURS, caller, conn),
                {**params, "start": entity_id, "depth": depth, "max_nodes": limits.MAX_GRAPH_NODES},
            )
        ).all()
        distances = {row.entity_id: row.depth for row in rows}
        found = await _entities(conn, caller, list(distances))
        reached = list(found)
        edge_ids = (
            (
                await conn.execute(
                    _sql(
                        f"SELECT id FROM fact WHERE {_COND} AND subject_id = ANY(:ids) AND object_id = ANY(:ids)",
                        caller,
                        conn,
                    ),
                    {**params, "ids": reached},
                )
            )
            .scalars()
            .all()
        )
        edges = await _edges(conn, caller, list(edge_ids))
    ordered = sorted(found.values(), key=lambda ent: (distances[ent.id], ent.name))
    return Neighbourhood(
        entity_id=entity_id,
        depth=depth,
        entities=ordered,
        distances={str(k): v for k, v in distances.items() if k in found},
        edges=sorted(edges.values(), key=lambda edge: (-edge.weight, edge.statement)),
    )


async def paths(
    rt: Runtime,
    caller: Caller,
    source_id: uuid.UUID,
    target_id: uuid.UUID,
    *,
    max_depth: int,
    limit: int,
    valid_at: datetime | None = None,
    known_at: datetime | None = None,
) -> Paths:
    """The shortest paths (no entity twice) from source to target, within ``max_depth`` hops; parallel
    facts between two entities count as one link (one of them is cited)."""
    caller.require("read")
    params = _params(caller, valid_at, known_at)
    async with rt.db.tenant(caller.org_id) as conn:
        await entities.fetch(conn, caller, source_id)
        await entities.fetch(conn, caller, target_id)
        ends = {**params, "start": source_id, "target": target_id}
        distance = await conn.scalar(_sql(_DISTANCE, caller, conn), {**ends, "depth": max_depth})
        walk = _sql(_PATHS, caller, conn)
        rows = [] if not distance else (await conn.execute(walk, {**ends, "depth": distance, "max_paths": limit})).all()
        node_ids = list({n for row in rows for n in row.nodes})
        fact_ids = list({x for row in rows for x in row.facts})
        found = await _entities(conn, caller, node_ids)
        edges = await _edges(conn, caller, fact_ids)
    out = [
        GraphPath(
            entities=[found[n] for n in row.nodes if n in found], edges=[edges[x] for x in row.facts if x in edges]
        )
        for row in rows
    ]
    return Paths(source_id=source_id, target_id=target_id, paths=out)

"""Facts on a timeline with both time axes and an as-of control; entities and the graph k hops around one,
with the paths between two."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import Field
from starlette.responses import Response

from engramdb import limits
from engramdb.schemas.common import StrictModel, Timestamp
from engramdb.schemas.graph import EntityFilters, FactFilters, Paths
from engramdb.services.graph import entities, facts
from engramdb.services.graph import traversal as graph
from engramdb.web import timeline
from engramdb.web.view import Pages, View, parse

pages = Pages()
TIMELINE_VERSIONS = 100  # fact versions drawn on the timeline (the table below pages on)


class GraphView(StrictModel):
    """What the entity page reads from its query string (beside nothing else: unknown names are refused)."""

    depth: int = Field(default=1, ge=1, le=limits.MAX_GRAPH_DEPTH)
    valid_at: Timestamp | None = None
    known_at: Timestamp | None = None
    to: uuid.UUID | None = Field(default=None, description="Show the paths to this entity.")


@pages.get("/facts")
async def fact_list(view: View) -> Response:
    """The facts the filters and as-of times select (paged), drawn on a timeline with every other version of
    the same facts, so what changed, and when Engram learnt it, is visible at once."""
    rt, caller = view.rt, view.caller
    filters = view.query(FactFilters)
    page = await facts.list_facts(rt, caller, filters)
    every = filters.model_copy(
        update={"include_history": True, "valid_at": None, "known_at": None, "cursor": None, "limit": TIMELINE_VERSIONS}
    )
    versions = await facts.list_facts(rt, caller, every)
    drawn = timeline.build(versions.data, valid_at=filters.valid_at, known_at=filters.known_at, now=datetime.now(UTC))
    return view.render(
        "facts.html",
        page=page,
        filters=filters,
        timeline=drawn,
        more_versions=versions.next_cursor is not None,
        next_href=view.next_href(page.next_cursor),
    )


@pages.get("/facts/{fact_id:uuid}")
async def fact(view: View) -> Response:
    found = await facts.get(view.rt, view.caller, view.path_id("fact_id"))
    return view.render("fact.html", fact=found)


@pages.get("/entities")
async def entity_list(view: View) -> Response:
    filters = view.query(EntityFilters)
    page = await entities.list_entities(view.rt, view.caller, filters)
    return view.render("entities.html", page=page, filters=filters, next_href=view.next_href(page.next_cursor))


@pages.get("/entities/{entity_id:uuid}")
async def entity(view: View) -> Response:
    """The entity, its neighbourhood as an interactive graph (drawn by static/graph.js from the JSON the
    page carries, with the same edges as a table for keyboards and screen readers), and paths to another."""
    entity_id = view.path_id("entity_id")
    rt, caller = view.rt, view.caller
    options = parse(GraphView, view.request.query_params)
    found = await entities.get(rt, caller, entity_id)
    around = await graph.neighbours(
        rt, caller, entity_id, depth=options.depth, valid_at=options.valid_at, known_at=options.known_at
    )
    routes: Paths | None = None
    if options.to is not None:
        routes = await graph.paths(
            rt,
            caller,
            entity_id,
            options.to,
            max_depth=limits.MAX_GRAPH_DEPTH,
            limit=5,
            valid_at=options.valid_at,
            known_at=options.known_at,
        )
    drawing = {
        "start": str(entity_id),
        "nodes": [
            {"id": str(e.id), "name": e.name, "type": e.type, "hops": around.distances.get(str(e.id), 0)}
            for e in around.entities
        ],
        "edges": [{"source": str(e.source_id), "target": str(e.target_id), "label": e.predicate} for e in around.edges],
    }
    return view.render("entity.html", entity=found, around=around, options=options, routes=routes, drawing=drawing)

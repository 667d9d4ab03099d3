"""Facts (bi-temporal triples), entities and the graph between them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from engramdb import limits
from engramdb.api.deps import CallerDep, RuntimeDep
from engramdb.schemas.common import Page, Timestamp
from engramdb.schemas.graph import (
    Entity,
    EntityFilters,
    EntityMerge,
    EntitySplit,
    EntityUpdate,
    Fact,
    FactCreate,
    FactFilters,
    FactResult,
    Neighbourhood,
    Paths,
    Predicate,
    PredicateFilters,
    PredicateName,
    PredicateUpdate,
)
from engramdb.services.graph import entities, facts, predicates
from engramdb.services.graph import traversal as graph

facts_router = APIRouter(tags=["facts"])


graph_router = APIRouter(tags=["graph"])


predicates_router = APIRouter(prefix="/predicates", tags=["predicates"])


ValidAt = Annotated[Timestamp | None, Query(description="Event time: what was true then (default: now).")]


KnownAt = Annotated[Timestamp | None, Query(description="System time: what Engram believed then (default: now).")]


@facts_router.post(
    "/facts", status_code=201, response_model=FactResult, operation_id="create_fact", summary="Add a fact (a triple)"
)
async def create_fact(body: FactCreate, rt: RuntimeDep, caller: CallerDep) -> FactResult:
    return await facts.create(rt, caller, body)


@facts_router.get("/facts", response_model=Page[Fact], operation_id="list_facts", summary="List facts, as of any time")
async def list_facts(filters: Annotated[FactFilters, Query()], rt: RuntimeDep, caller: CallerDep) -> Page[Fact]:
    return await facts.list_facts(rt, caller, filters)


@facts_router.get("/facts/{fact_id}", response_model=Fact, operation_id="get_fact", summary="Get one fact version")
async def get_fact(fact_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> Fact:
    return await facts.get(rt, caller, fact_id)


@facts_router.delete(
    "/facts/{fact_id}",
    response_model=Fact,
    operation_id="retract_fact",
    summary="Stop believing a fact (kept in history)",
)
async def retract_fact(fact_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> Fact:
    return await facts.retract(rt, caller, fact_id)


@graph_router.get(
    "/entities", response_model=Page[Entity], operation_id="list_entities", summary="List or find entities"
)
async def list_entities(filters: Annotated[EntityFilters, Query()], rt: RuntimeDep, caller: CallerDep) -> Page[Entity]:
    return await entities.list_entities(rt, caller, filters)


@graph_router.get("/entities/{entity_id}", response_model=Entity, operation_id="get_entity", summary="Get an entity")
async def get_entity(entity_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> Entity:
    return await entities.get(rt, caller, entity_id)


@graph_router.patch(
    "/entities/{entity_id}", response_model=Entity, operation_id="update_entity", summary="Rename, retype, set aliases"
)
async def update_entity(entity_id: uuid.UUID, body: EntityUpdate, rt: RuntimeDep, caller: CallerDep) -> Entity:
    return await entities.update_entity(rt, caller, entity_id, body)


@graph_router.post(
    "/entities/{entity_id}/merge",
    response_model=Entity,
    operation_id="merge_entities",
    summary="Merge entities into this one",
)
async def merge_entities(entity_id: uuid.UUID, body: EntityMerge, rt: RuntimeDep, caller: CallerDep) -> Entity:
    return await entities.merge(rt, caller, entity_id, body)


@graph_router.post(
    "/entities/{entity_id}/split",
    status_code=201,
    response_model=Entity,
    operation_id="split_entity",
    summary="Split a new entity out of this one",
)
async def split_entity(entity_id: uuid.UUID, body: EntitySplit, rt: RuntimeDep, caller: CallerDep) -> Entity:
    return await entities.split(rt, caller, entity_id, body)


@graph_router.get(
    "/entities/{entity_id}/neighbors",
    response_model=Neighbourhood,
    operation_id="get_entity_neighbors",
    summary="Entities within k hops",
)
async def get_entity_neighbors(
    entity_id: uuid.UUID,
    rt: RuntimeDep,
    caller: CallerDep,
    depth: Annotated[int, Query(ge=1, le=limits.MAX_GRAPH_DEPTH)] = 1,
    valid_at: ValidAt = None,
    known_at: KnownAt = None,
) -> Neighbourhood:
    return await graph.neighbours(rt, caller, entity_id, depth=depth, valid_at=valid_at, known_at=known_at)


@graph_router.get(
    "/entities/{entity_id}/paths/{target_id}",
    response_model=Paths,
    operation_id="get_entity_paths",
    summary="Paths between two entities",
)
async def get_entity_paths(
    entity_id: uuid.UUID,
    target_id: uuid.UUID,
    rt: RuntimeDep,
    caller: CallerDep,
    max_depth: Annotated[int, Query(ge=1, le=limits.MAX_GRAPH_DEPTH)] = 3,
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
    valid_at: ValidAt = None,
    known_at: KnownAt = None,
) -> Paths:
    return await graph.paths(
        rt, caller, entity_id, target_id, max_depth=max_depth, limit=limit, valid_at=valid_at, known_at=known_at
    )


NamePath = Annotated[PredicateName, Path(description="The predicate, in snake_case (`Lives In` is `lives_in`).")]


@predicates_router.get(
    "",
    response_model=Page[Predicate],
    operation_id="list_predicates",
    summary="The predicate catalogue: built-in predicates and the organization's own, by name",
)
async def list_predicates(
    filters: Annotated[PredicateFilters, Query()], rt: RuntimeDep, caller: CallerDep
) -> Page[Predicate]:
    return await predicates.list_predicates(rt, caller, filters)


@predicates_router.get("/{name}", response_model=Predicate, operation_id="get_predicate", summary="Get a predicate")
async def get_predicate(name: NamePath, rt: RuntimeDep, caller: CallerDep) -> Predicate:
    return await predicates.get(rt, caller, name)


@predicates_router.put(
    "/{name}",
    response_model=Predicate,
    operation_id="set_predicate",
    summary="Define a predicate, or override a built-in one's cardinality (admin)",
)
async def set_predicate(name: NamePath, body: PredicateUpdate, rt: RuntimeDep, caller: CallerDep) -> Predicate:
    return await predicates.upsert(rt, caller, name, body)


@predicates_router.delete(
    "/{name}",
    status_code=204,
    operation_id="delete_predicate",
    summary="Remove the organization's definition of a predicate (a built-in one reverts to its default)",
)
async def delete_predicate(name: NamePath, rt: RuntimeDep, caller: CallerDep) -> Response:
    await predicates.delete_predicate(rt, caller, name)
    return Response(status_code=204)

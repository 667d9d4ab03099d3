"""Jobs, usage, facts, entities and the graph, categories, narratives and context assembly."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from engramdb import limits
from engramdb.api.deps import CallerDep, CursorQ, DbDep, LimitQ, RuntimeDep
from engramdb.schemas.categories import Category, CategoryCreate, CategoryUpdate
from engramdb.schemas.common import Page
from engramdb.schemas.context import ContextRequest, ContextResponse
from engramdb.schemas.graph import (
    Entity,
    EntityMerge,
    EntitySplit,
    EntityType,
    EntityUpdate,
    Fact,
    FactCreate,
    FactQuery,
    FactResult,
    Neighbourhood,
    Paths,
)
from engramdb.schemas.jobs import Job, JobStatus, Usage
from engramdb.schemas.narratives import Narrative
from engramdb.services.core import jobs
from engramdb.services.distill import narratives
from engramdb.services.graph import entities, facts
from engramdb.services.graph import traversal as graph
from engramdb.services.memory import categories
from engramdb.services.search import context as assemble

jobs_router = APIRouter(tags=["jobs"])
facts_router = APIRouter(tags=["facts"])
graph_router = APIRouter(tags=["graph"])
categories_router = APIRouter(tags=["categories"])
narratives_router = APIRouter(tags=["narratives"])
context_router = APIRouter(tags=["context"])

ValidAt = Annotated[datetime | None, Query(description="Event time: what was true then (default: now).")]
KnownAt = Annotated[datetime | None, Query(description="System time: what Engram believed then (default: now).")]


@jobs_router.get("/jobs/{job_id}", response_model=Job, operation_id="get_job", summary="A background job's state")
async def get_job(job_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Job:
    return await jobs.get(db, caller, job_id)


@jobs_router.get("/jobs", response_model=Page[Job], operation_id="list_jobs", summary="Background jobs, newest first")
async def list_jobs(
    db: DbDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    status: JobStatus | None = None,
    kind: Literal["engram.extract", "engram.narrate"] | None = None,
    session_id: uuid.UUID | None = None,
) -> Page[Job]:
    return await jobs.list_jobs(db, caller, status=status, kind=kind, session_id=session_id, cursor=cursor, limit=limit)


@jobs_router.post(
    "/jobs/{job_id}/retry",
    status_code=201,
    response_model=Job,
    operation_id="retry_job",
    summary="Queue a failed job again (as a new job)",
)
async def retry_job(job_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> Job:
    return await jobs.retry(rt.db, caller, job_id, max_attempts=rt.settings.job_max_attempts)


@jobs_router.get("/usage", response_model=Usage, operation_id="get_usage", summary="Jobs and LLM tokens (admin)")
async def get_usage(
    db: DbDep, caller: CallerDep, since: datetime | None = None, until: datetime | None = None
) -> Usage:
    return await jobs.usage(db, caller, since=since, until=until)


@facts_router.post(
    "/facts", status_code=201, response_model=FactResult, operation_id="create_fact", summary="Add a fact (a triple)"
)
async def create_fact(body: FactCreate, rt: RuntimeDep, caller: CallerDep) -> FactResult:
    return await facts.create(rt, caller, body)


@facts_router.get("/facts", response_model=Page[Fact], operation_id="list_facts", summary="List facts, as of any time")
async def list_facts(
    rt: RuntimeDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    subject: Annotated[str | None, Query(max_length=limits.MAX_FACT_PART_CHARS)] = None,
    entity_id: uuid.UUID | None = None,
    predicate: Annotated[str | None, Query(max_length=100)] = None,
    user_id: uuid.UUID | None = None,
    valid_at: Annotated[datetime | None, Query(description="Event time: only facts true at this time.")] = None,
    known_at: KnownAt = None,
    include_history: Annotated[bool, Query(description="Every version, superseded ones too.")] = False,
) -> Page[Fact]:
    q = FactQuery(
        subject=subject,
        entity_id=entity_id,
        predicate=predicate,
        user_id=user_id,
        valid_at=valid_at,
        known_at=known_at,
        include_history=include_history,
    )
    return await facts.list_facts(rt, caller, q, cursor=cursor, limit=limit)


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
async def list_entities(
    rt: RuntimeDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    q: Annotated[str | None, Query(max_length=limits.MAX_NAME_CHARS, description="Part of a name or alias.")] = None,
    type: EntityType | None = None,
    user_id: uuid.UUID | None = None,
) -> Page[Entity]:
    return await entities.list_entities(
        rt, caller, user_id=user_id, entity_type=type, query=q, cursor=cursor, limit=limit
    )


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


@categories_router.get(
    "/categories",
    response_model=list[Category],
    operation_id="list_categories",
    summary="Built-in and custom categories",
)
async def list_categories(rt: RuntimeDep, caller: CallerDep) -> list[Category]:
    return await categories.list_categories(rt, caller)


@categories_router.post(
    "/categories",
    status_code=201,
    response_model=Category,
    operation_id="create_category",
    summary="Add a category (admin)",
)
async def create_category(body: CategoryCreate, rt: RuntimeDep, caller: CallerDep) -> Category:
    return await categories.create(rt, caller, body)


@categories_router.patch(
    "/categories/{category_id}",
    response_model=Category,
    operation_id="update_category",
    summary="Redescribe a category",
)
async def update_category(category_id: uuid.UUID, body: CategoryUpdate, rt: RuntimeDep, caller: CallerDep) -> Category:
    return await categories.update_category(rt, caller, category_id, body)


@categories_router.delete(
    "/categories/{category_id}", status_code=204, operation_id="delete_category", summary="Remove a custom category"
)
async def delete_category(category_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> Response:
    await categories.delete_category(rt, caller, category_id)
    return Response(status_code=204)


@narratives_router.post(
    "/users/{user_id}/narrative",
    status_code=202,
    response_model=Job,
    operation_id="refresh_user_narrative",
    summary="Queue a rewrite of the user's narrative",
)
async def refresh_user_narrative(
    user_id: uuid.UUID,
    rt: RuntimeDep,
    caller: CallerDep,
    wait: Annotated[bool, Query(description="Return once the job has finished (at most 60 s).")] = False,
) -> Job:
    job = await narratives.request(rt, caller, user_id)
    return await jobs.wait(rt.db, caller, job.id, timeout_s=limits.WAIT_TIMEOUT_S) if wait else job


@narratives_router.get(
    "/users/{user_id}/narrative",
    response_model=Narrative,
    operation_id="get_user_narrative",
    summary="The latest narrative",
)
async def get_user_narrative(user_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> Narrative:
    return await narratives.latest(rt, caller, user_id)


@narratives_router.get(
    "/users/{user_id}/narratives",
    response_model=Page[Narrative],
    operation_id="list_user_narratives",
    summary="Every version of the user's narrative",
)
async def list_user_narratives(
    user_id: uuid.UUID,
    rt: RuntimeDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
) -> Page[Narrative]:
    return await narratives.versions(rt, caller, user_id, cursor=cursor, limit=limit)


@context_router.post(
    "/context", response_model=ContextResponse, operation_id="assemble_context", summary="A prompt-ready context block"
)
async def assemble_context(body: ContextRequest, rt: RuntimeDep, caller: CallerDep) -> ContextResponse:
    return await assemble.assemble(rt, caller, body)

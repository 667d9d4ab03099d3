from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Query, Response

from engramdb import limits
from engramdb.api.deps import CallerDep, CursorQ, DbDep, LimitQ, RuntimeDep
from engramdb.api.params import MetadataQ, TagsQ, json_object
from engramdb.schemas.common import Page
from engramdb.schemas.memories import (
    Memory,
    MemoryCreate,
    MemoryFilters,
    MemoryHistoryEntry,
    MemoryState,
    MemoryStateChange,
    MemoryType,
    MemoryUpdate,
)
from engramdb.services.memory import memories

router = APIRouter(prefix="/memories", tags=["memories"])


@router.post("", status_code=201, response_model=Memory, operation_id="create_memory", summary="Create a memory")
async def create_memory(body: MemoryCreate, rt: RuntimeDep, caller: CallerDep) -> Memory:
    return await memories.create(rt, caller, body)


@router.get("", response_model=Page[Memory], operation_id="list_memories", summary="List memories, newest first")
async def list_memories(
    db: DbDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    user_id: uuid.UUID | None = None,
    external_user_id: str | None = None,
    agent_id: uuid.UUID | None = None,
    app_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    type: MemoryType | None = None,
    state: MemoryState | None = None,
    tags_any: TagsQ = None,
    tags_all: TagsQ = None,
    categories: TagsQ = None,
    metadata: MetadataQ = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    include_expired: bool = False,
) -> Page[Memory]:
    filters = MemoryFilters(
        user_id=user_id,
        external_user_id=external_user_id,
        agent_id=agent_id,
        app_id=app_id,
        session_id=session_id,
        type=type,
        state=state,
        tags_any=tags_any,
        tags_all=tags_all,
        categories=categories,
        metadata=json_object(metadata, "metadata"),
        created_after=created_after,
        created_before=created_before,
        include_expired=include_expired,
    )
    return await memories.list_memories(db, caller, filters, cursor=cursor, limit=limit)


@router.get("/{memory_id}", response_model=Memory, operation_id="get_memory", summary="Get a memory")
async def get_memory(memory_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Memory:
    return await memories.get(db, caller, memory_id)


@router.patch(
    "/{memory_id}",
    response_model=Memory,
    operation_id="update_memory",
    summary="Update a memory (the old values go to its history)",
)
async def update_memory(memory_id: uuid.UUID, body: MemoryUpdate, rt: RuntimeDep, caller: CallerDep) -> Memory:
    return await memories.update_memory(rt, caller, memory_id, body)


@router.post(
    "/{memory_id}/state",
    response_model=Memory,
    operation_id="change_memory_state",
    summary="Set a memory's state: active, paused, archived or deleted",
)
async def change_memory_state(memory_id: uuid.UUID, body: MemoryStateChange, db: DbDep, caller: CallerDep) -> Memory:
    return await memories.change_state(db, caller, memory_id, body)


@router.delete(
    "/{memory_id}",
    status_code=204,
    operation_id="delete_memory",
    summary="Delete a memory: soft by default (restorable), erased for good with hard=true",
)
async def delete_memory(
    memory_id: uuid.UUID,
    db: DbDep,
    caller: CallerDep,
    hard: bool = Query(False, description="Erase the memory and its history instead of marking it deleted."),
) -> Response:
    if hard:
        await memories.purge(db, caller, memory_id)
    else:
        await memories.change_state(db, caller, memory_id, MemoryStateChange(state="deleted"))
    return Response(status_code=204)


@router.get(
    "/{memory_id}/history",
    response_model=Page[MemoryHistoryEntry],
    operation_id="get_memory_history",
    summary="Every change to a memory, oldest first",
)
async def get_memory_history(
    memory_id: uuid.UUID,
    db: DbDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
) -> Page[MemoryHistoryEntry]:
    return await memories.history(db, caller, memory_id, cursor=cursor, limit=limit)

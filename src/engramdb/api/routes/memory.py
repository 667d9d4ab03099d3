"""Memories with their history, states and access log, categories, the org's tags and decay half-lives."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from engramdb.api.deps import CallerDep, DbDep, RuntimeDep
from engramdb.schemas.categories import Category, CategoryCreate, CategoryFilters, CategoryUpdate
from engramdb.schemas.common import Page
from engramdb.schemas.decay import Decay, DecayUpdate
from engramdb.schemas.memories import (
    Memory,
    MemoryAccess,
    MemoryAccessFilters,
    MemoryAccessLogFilters,
    MemoryCreate,
    MemoryFilters,
    MemoryHistoryEntry,
    MemoryHistoryFilters,
    MemoryStateChange,
    MemoryUpdate,
)
from engramdb.schemas.tags import TagCount, TagFilters, TagRename, TagRenameResult
from engramdb.services.governance import erase
from engramdb.services.memory import accesses, categories, decay, memories, tags

categories_router = APIRouter(tags=["categories"])


@categories_router.get(
    "/categories",
    response_model=Page[Category],
    operation_id="list_categories",
    summary="Built-in and custom categories, by name",
)
async def list_categories(
    filters: Annotated[CategoryFilters, Query()], rt: RuntimeDep, caller: CallerDep
) -> Page[Category]:
    return await categories.list_categories(rt, caller, filters)


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


memories_router = APIRouter(prefix="/memories", tags=["memories"])


@memories_router.post(
    "", status_code=201, response_model=Memory, operation_id="create_memory", summary="Create a memory"
)
async def create_memory(body: MemoryCreate, rt: RuntimeDep, caller: CallerDep) -> Memory:
    return await memories.create(rt, caller, body)


@memories_router.get(
    "", response_model=Page[Memory], operation_id="list_memories", summary="List memories, newest first"
)
async def list_memories(filters: Annotated[MemoryFilters, Query()], db: DbDep, caller: CallerDep) -> Page[Memory]:
    return await memories.list_memories(db, caller, filters)


@memories_router.get("/{memory_id}", response_model=Memory, operation_id="get_memory", summary="Get a memory")
async def get_memory(memory_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Memory:
    return await memories.get(db, caller, memory_id)


@memories_router.patch(
    "/{memory_id}",
    response_model=Memory,
    operation_id="update_memory",
    summary="Update a memory (the old values go to its history)",
)
async def update_memory(memory_id: uuid.UUID, body: MemoryUpdate, rt: RuntimeDep, caller: CallerDep) -> Memory:
    return await memories.update_memory(rt, caller, memory_id, body)


@memories_router.post(
    "/{memory_id}/state",
    response_model=Memory,
    operation_id="change_memory_state",
    summary="Set a memory's state: active, paused, archived or deleted",
)
async def change_memory_state(memory_id: uuid.UUID, body: MemoryStateChange, db: DbDep, caller: CallerDep) -> Memory:
    return await memories.change_state(db, caller, memory_id, body)


@memories_router.delete(
    "/{memory_id}",
    status_code=204,
    operation_id="delete_memory",
    summary="Delete a memory: soft by default (restorable), erased for good with hard=true",
)
async def delete_memory(
    memory_id: uuid.UUID,
    rt: RuntimeDep,
    caller: CallerDep,
    hard: bool = Query(False, description="Erase the memory and its history instead of marking it deleted."),
) -> Response:
    if hard:
        await erase.memory(rt, caller, memory_id)
    else:
        await memories.change_state(rt.db, caller, memory_id, MemoryStateChange(state="deleted"))
    return Response(status_code=204)


@memories_router.get(
    "/{memory_id}/history",
    response_model=Page[MemoryHistoryEntry],
    operation_id="get_memory_history",
    summary="Every change to a memory, oldest first",
)
async def get_memory_history(
    memory_id: uuid.UUID, filters: Annotated[MemoryHistoryFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[MemoryHistoryEntry]:
    return await memories.history(db, caller, memory_id, filters)


@memories_router.get(
    "/{memory_id}/accesses",
    response_model=Page[MemoryAccess],
    operation_id="get_memory_accesses",
    summary="Every time a search, read or context returned the memory, newest first",
)
async def get_memory_accesses(
    memory_id: uuid.UUID, filters: Annotated[MemoryAccessFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[MemoryAccess]:
    return await accesses.list_for_memory(db, caller, memory_id, filters)


accesses_router = APIRouter(prefix="/memory-accesses", tags=["memories"])


@accesses_router.get(
    "",
    response_model=Page[MemoryAccess],
    operation_id="list_memory_accesses",
    summary="The access log of every memory the caller sees, newest first",
)
async def list_memory_accesses(
    filters: Annotated[MemoryAccessLogFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[MemoryAccess]:
    return await accesses.list_all(db, caller, filters)


tags_router = APIRouter(prefix="/tags", tags=["tags"])


@tags_router.get("", response_model=Page[TagCount], operation_id="list_tags", summary="The org's tags, most used first")
async def list_tags(filters: Annotated[TagFilters, Query()], db: DbDep, caller: CallerDep) -> Page[TagCount]:
    return await tags.list_tags(db, caller, filters)


@tags_router.post(
    "/rename",
    response_model=TagRenameResult,
    operation_id="rename_tag",
    summary="Rename a tag on every session, message, memory, document and repository (admin)",
)
async def rename_tag(body: TagRename, db: DbDep, caller: CallerDep) -> TagRenameResult:
    return await tags.rename(db, caller, body)


decay_router = APIRouter(prefix="/decay", tags=["memories"])


@decay_router.get(
    "", response_model=Decay, operation_id="get_decay", summary="How fast each memory type's importance fades"
)
async def get_decay(rt: RuntimeDep, caller: CallerDep) -> Decay:
    return await decay.get(rt.db, caller, rt.settings)


@decay_router.put(
    "",
    response_model=Decay,
    operation_id="set_decay",
    summary="Set the organization's own half-lives, whole (admin; a type left out has the server's)",
)
async def set_decay(body: DecayUpdate, rt: RuntimeDep, caller: CallerDep) -> Decay:
    return await decay.replace(rt.db, caller, body, rt.settings)

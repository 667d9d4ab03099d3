"""Memories and how they are sorted: ``client.memories``, ``client.categories``, ``client.tags``,
``client.decay``."""

from __future__ import annotations

from engramdb.schemas.categories import Category, CategoryCreate, CategoryFilters, CategoryUpdate
from engramdb.schemas.decay import Decay as DecayModel
from engramdb.schemas.decay import DecayUpdate
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
from engramdb.sdk import _common as c
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._async.resources.base import Fields, Resource
from engramdb.sdk._common import Id


class Memories(Resource):
    @c.operation("create_memory")
    async def create(self, memory: MemoryCreate | None = None, /, **fields: Fields) -> Memory:
        sent = c.body(MemoryCreate, memory, fields)
        return await self._client.call(Memory, "POST", "/v1/memories", json=sent)

    @c.operation("list_memories")
    def list(self, filters: MemoryFilters | None = None, /, **fields: Fields) -> AsyncPager[Memory]:
        """Newest first. ``fields``: those of ``MemoryFilters`` (user_id, external_user_id, agent_id,
        app_id, session_id, type, state, tags_any, tags_all, categories, metadata (a dict the memory's
        metadata contains), created_after, created_before, include_expired, cursor, limit)."""
        params = c.filters(MemoryFilters, filters, fields)
        return AsyncPager(self._client, "/v1/memories", Memory, params)

    @c.operation("get_memory")
    async def get(self, memory_id: Id) -> Memory:
        return await self._client.call(Memory, "GET", f"/v1/memories/{c.path_id(memory_id)}")

    @c.operation("update_memory")
    async def update(self, memory_id: Id, change: MemoryUpdate | None = None, /, **fields: Fields) -> Memory:
        sent = c.body(MemoryUpdate, change, fields)
        return await self._client.call(Memory, "PATCH", f"/v1/memories/{c.path_id(memory_id)}", json=sent)

    @c.operation("delete_memory")
    async def delete(self, memory_id: Id, *, hard: bool = False) -> None:
        """Soft delete (state ``deleted``, kept in history) unless ``hard``."""
        await self._client.request("DELETE", f"/v1/memories/{c.path_id(memory_id)}", params={"hard": hard})

    @c.operation("change_memory_state")
    async def set_state(self, memory_id: Id, change: MemoryStateChange | None = None, /, **fields: Fields) -> Memory:
        sent = c.body(MemoryStateChange, change, fields)
        path = f"/v1/memories/{c.path_id(memory_id)}/state"
        return await self._client.call(Memory, "POST", path, json=sent, idempotent=True)

    @c.operation("get_memory_history")
    def history(
        self, memory_id: Id, filters: MemoryHistoryFilters | None = None, /, **fields: Fields
    ) -> AsyncPager[MemoryHistoryEntry]:
        """Oldest change first. ``fields``: cursor, limit."""
        path = f"/v1/memories/{c.path_id(memory_id)}/history"
        return AsyncPager(self._client, path, MemoryHistoryEntry, c.filters(MemoryHistoryFilters, filters, fields))

    @c.operation("get_memory_accesses")
    def accesses(
        self, memory_id: Id, filters: MemoryAccessFilters | None = None, /, **fields: Fields
    ) -> AsyncPager[MemoryAccess]:
        """Every time a search, read or context returned the memory, newest first. ``fields``:
        access_type, key_id, accessed_after, accessed_before, cursor, limit."""
        path = f"/v1/memories/{c.path_id(memory_id)}/accesses"
        return AsyncPager(self._client, path, MemoryAccess, c.filters(MemoryAccessFilters, filters, fields))

    @c.operation("list_memory_accesses")
    def access_log(
        self, filters: MemoryAccessLogFilters | None = None, /, **fields: Fields
    ) -> AsyncPager[MemoryAccess]:
        """The access log of every memory the key sees, newest first. ``fields``: memory_id, access_type,
        key_id (what one key was shown), accessed_after, accessed_before, cursor, limit."""
        params = c.filters(MemoryAccessLogFilters, filters, fields)
        return AsyncPager(self._client, "/v1/memory-accesses", MemoryAccess, params)


class Categories(Resource):
    @c.operation("list_categories")
    def list(self, filters: CategoryFilters | None = None, /, **fields: Fields) -> AsyncPager[Category]:
        """By name. ``fields``: cursor, limit."""
        return AsyncPager(self._client, "/v1/categories", Category, c.filters(CategoryFilters, filters, fields))

    @c.operation("create_category")
    async def create(self, category: CategoryCreate | None = None, /, **fields: Fields) -> Category:
        sent = c.body(CategoryCreate, category, fields)
        return await self._client.call(Category, "POST", "/v1/categories", json=sent)

    @c.operation("update_category")
    async def update(self, category_id: Id, change: CategoryUpdate | None = None, /, **fields: Fields) -> Category:
        sent = c.body(CategoryUpdate, change, fields)
        return await self._client.call(Category, "PATCH", f"/v1/categories/{c.path_id(category_id)}", json=sent)

    @c.operation("delete_category")
    async def delete(self, category_id: Id) -> None:
        await self._client.request("DELETE", f"/v1/categories/{c.path_id(category_id)}")


class Tags(Resource):
    @c.operation("list_tags")
    def list(self, filters: TagFilters | None = None, /, **fields: Fields) -> AsyncPager[TagCount]:
        """Most used first. ``fields``: prefix, cursor, limit."""
        return AsyncPager(self._client, "/v1/tags", TagCount, c.filters(TagFilters, filters, fields))

    @c.operation("rename_tag")
    async def rename(self, rename: TagRename | None = None, /, **fields: Fields) -> TagRenameResult:
        sent = c.body(TagRename, rename, fields)
        return await self._client.call(TagRenameResult, "POST", "/v1/tags/rename", json=sent, idempotent=True)


class Decay(Resource):
    """How fast each memory type's importance fades in the organization (setting it takes an admin key)."""

    @c.operation("get_decay")
    async def get(self) -> DecayModel:
        return await self._client.call(DecayModel, "GET", "/v1/decay")

    @c.operation("set_decay")
    async def set(self, decay: DecayUpdate | None = None, /, **fields: Fields) -> DecayModel:
        """Replace the organization's own half-lives, whole: ``set(half_life_days={"episodic": 7})``; a type
        left out has the server's half-life again, 0 stops the type decaying."""
        return await self._client.call(DecayModel, "PUT", "/v1/decay", json=c.body(DecayUpdate, decay, fields))

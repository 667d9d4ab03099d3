# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.
"""Memories and how they are sorted: ``client.memories``, ``client.categories``, ``client.tags``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engramdb.schemas.categories import Category, CategoryCreate, CategoryUpdate
from engramdb.schemas.memories import Memory, MemoryCreate, MemoryHistoryEntry, MemoryStateChange, MemoryUpdate
from engramdb.schemas.tags import TagCount, TagRename, TagRenameResult
from engramdb.sdk import _common as c
from engramdb.sdk._common import Id
from engramdb.sdk._sync.pager import Pager
from engramdb.sdk._sync.resources.base import Fields, Resource


class Memories(Resource):
    @c.operation("create_memory")
    def create(self, memory: MemoryCreate | None = None, /, **fields: Fields) -> Memory:
        sent = c.body(MemoryCreate, memory, fields)
        return self._client.call(Memory, "POST", "/v1/memories", json=sent)

    @c.operation("list_memories")
    def list(
        self,
        *,
        user_id: Id | None = None,
        external_user_id: str | None = None,
        agent_id: Id | None = None,
        app_id: Id | None = None,
        session_id: Id | None = None,
        type: str | None = None,
        state: str | None = None,
        tags_any: list[str] | None = None,
        tags_all: list[str] | None = None,
        categories: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_expired: bool | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Pager[Memory]:
        params = {
            "user_id": user_id,
            "external_user_id": external_user_id,
            "agent_id": agent_id,
            "app_id": app_id,
            "session_id": session_id,
            "type": type,
            "state": state,
            "tags_any": tags_any,
            "tags_all": tags_all,
            "categories": categories,
            "metadata": metadata,
            "created_after": created_after,
            "created_before": created_before,
            "include_expired": include_expired,
            "cursor": cursor,
            "limit": limit,
        }
        return Pager(self._client, "/v1/memories", Memory, params)

    @c.operation("get_memory")
    def get(self, memory_id: Id) -> Memory:
        return self._client.call(Memory, "GET", f"/v1/memories/{c.path_id(memory_id)}")

    @c.operation("update_memory")
    def update(self, memory_id: Id, change: MemoryUpdate | None = None, /, **fields: Fields) -> Memory:
        sent = c.body(MemoryUpdate, change, fields)
        return self._client.call(Memory, "PATCH", f"/v1/memories/{c.path_id(memory_id)}", json=sent)

    @c.operation("delete_memory")
    def delete(self, memory_id: Id, *, hard: bool = False) -> None:
        """Soft delete (state ``deleted``, kept in history) unless ``hard``."""
        self._client.request("DELETE", f"/v1/memories/{c.path_id(memory_id)}", params={"hard": hard})

    @c.operation("change_memory_state")
    def set_state(self, memory_id: Id, change: MemoryStateChange | None = None, /, **fields: Fields) -> Memory:
        sent = c.body(MemoryStateChange, change, fields)
        path = f"/v1/memories/{c.path_id(memory_id)}/state"
        return self._client.call(Memory, "POST", path, json=sent, idempotent=True)

    @c.operation("get_memory_history")
    def history(
        self, memory_id: Id, *, cursor: str | None = None, limit: int | None = None
    ) -> Pager[MemoryHistoryEntry]:
        path = f"/v1/memories/{c.path_id(memory_id)}/history"
        return Pager(self._client, path, MemoryHistoryEntry, {"cursor": cursor, "limit": limit})


class Categories(Resource):
    @c.operation("list_categories")
    def list(self) -> list[Category]:
        found = (self._client.request("GET", "/v1/categories")).json()
        return [Category.model_validate(item) for item in found]

    @c.operation("create_category")
    def create(self, category: CategoryCreate | None = None, /, **fields: Fields) -> Category:
        sent = c.body(CategoryCreate, category, fields)
        return self._client.call(Category, "POST", "/v1/categories", json=sent)

    @c.operation("update_category")
    def update(self, category_id: Id, change: CategoryUpdate | None = None, /, **fields: Fields) -> Category:
        sent = c.body(CategoryUpdate, change, fields)
        return self._client.call(Category, "PATCH", f"/v1/categories/{c.path_id(category_id)}", json=sent)

    @c.operation("delete_category")
    def delete(self, category_id: Id) -> None:
        self._client.request("DELETE", f"/v1/categories/{c.path_id(category_id)}")


class Tags(Resource):
    @c.operation("list_tags")
    def list(
        self, *, prefix: str | None = None, cursor: str | None = None, limit: int | None = None
    ) -> Pager[TagCount]:
        return Pager(self._client, "/v1/tags", TagCount, {"prefix": prefix, "cursor": cursor, "limit": limit})

    @c.operation("rename_tag")
    def rename(self, rename: TagRename | None = None, /, **fields: Fields) -> TagRenameResult:
        sent = c.body(TagRename, rename, fields)
        return self._client.call(TagRenameResult, "POST", "/v1/tags/rename", json=sent, idempotent=True)

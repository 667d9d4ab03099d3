"""Cursor pagination as iterators (generated into ``_sync`` like the client)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from engramdb.schemas.common import Page

if TYPE_CHECKING:
    from engramdb.sdk._async.http import AsyncHTTP

T = TypeVar("T", bound=BaseModel)


class AsyncPager(Generic[T]):
    """A list call: ``async for item in pager`` walks every page; ``await pager.page(cursor)`` gets one."""

    def __init__(self, client: AsyncHTTP, path: str, model: type[T], params: Mapping[str, Any]) -> None:
        self._client = client
        self._path = path
        self._type: Any = Page[model]  # type: ignore[valid-type]
        self._params = dict(params)

    async def page(self, cursor: str | None = None) -> Page[T]:
        params = {**self._params, "cursor": cursor or self._params.get("cursor")}
        found: Page[T] = await self._client.call(self._type, "GET", self._path, params=params)
        return found

    async def __aiter__(self) -> AsyncIterator[T]:
        cursor = self._params.get("cursor")
        while True:
            page = await self.page(cursor)
            for item in page.data:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def to_list(self, limit: int | None = None) -> list[T]:
        """Every item (or the first ``limit``), fetching pages as needed."""
        found: list[T] = []
        async for item in self:
            if limit is not None and len(found) >= limit:
                break
            found.append(item)
        return found

# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.
"""Cursor pagination as iterators (generated into ``_sync`` like the client)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from engramdb.schemas.common import Page

if TYPE_CHECKING:
    from engramdb.sdk._sync.http import HTTP

T = TypeVar("T", bound=BaseModel)


class Pager(Generic[T]):
    """A list call: ``for item in pager`` walks every page; ``pager.page(cursor)`` gets one."""

    def __init__(self, client: HTTP, path: str, model: type[T], params: Mapping[str, Any]) -> None:
        self._client = client
        self._path = path
        self._type: Any = Page[model]  # type: ignore[valid-type]
        self._params = dict(params)

    def page(self, cursor: str | None = None) -> Page[T]:
        params = {**self._params, "cursor": cursor or self._params.get("cursor")}
        found: Page[T] = self._client.call(self._type, "GET", self._path, params=params)
        return found

    def __iter__(self) -> Iterator[T]:
        cursor = self._params.get("cursor")
        while True:
            page = self.page(cursor)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def to_list(self, limit: int | None = None) -> list[T]:
        """Every item (or the first ``limit``), fetching pages as needed."""
        found: list[T] = []
        for item in self:
            if limit is not None and len(found) >= limit:
                break
            found.append(item)
        return found

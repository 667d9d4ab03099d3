"""Offloaded contexts: ``client.contexts``."""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Callable

from engramdb.schemas.contexts import Context, ContextCreate, ContextFilters, ContextResult, ContextUploadParams
from engramdb.sdk import _common as c
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._async.resources.base import Fields, Resource
from engramdb.sdk._common import Id

UPLOAD_CHUNK = 1_048_576  # bytes per piece of an upload that reports progress


class _Upload:
    """Content sent in pieces, reporting the bytes sent so far after each. An iterable, not a generator:
    a retried request iterates it again from the start."""

    def __init__(self, data: bytes, progress: Callable[[int], None]) -> None:
        self.data = data
        self.progress = progress

    async def __aiter__(self) -> AsyncIterator[bytes]:
        view = memoryview(self.data)
        for start in range(0, len(view), UPLOAD_CHUNK):
            piece = bytes(view[start : start + UPLOAD_CHUNK])
            yield piece
            self.progress(start + len(piece))


class Contexts(Resource):
    """What an agent moves out of its window: stored compressed, found by search (``types=["contexts"]``),
    restored byte-exact. The same content offloaded twice into the same scope is stored once (the second
    call's ``action`` is ``unchanged``), so an offload is safe to retry."""

    @c.operation("offload_context")
    async def offload(
        self,
        content: str | bytes,
        *,
        content_type: str | None = None,
        progress: Callable[[int], None] | None = None,
        **fields: Fields,
    ) -> ContextResult:
        """Offload text (sent as JSON) or bytes (sent as the body, with ``content_type``, by default the
        type ``filename`` names, else ``application/octet-stream``). ``fields``: title, filename,
        tags, metadata, user_id, external_user_id, team_id, agent_id, app_id, session_id, task_id,
        expires_at, ttl_s. ``progress`` (bytes only) is called with the bytes sent so far."""
        if isinstance(content, str):
            sent = c.body(ContextCreate, None, {"content": content, "content_type": content_type, **fields})
            return await self._client.call(ContextResult, "POST", "/v1/contexts", json=sent)
        params = c.filters(ContextUploadParams, None, fields)
        name = fields.get("filename")
        guessed = mimetypes.guess_type(name)[0] if isinstance(name, str) else None
        headers = {"Content-Type": content_type or guessed or "application/octet-stream"}
        body: bytes | _Upload = content if progress is None else _Upload(content, progress)
        return await self._client.call(
            ContextResult, "POST", "/v1/contexts", content=body, params=params, headers=headers
        )

    @c.operation("get_context")
    async def get(self, context_id: Id) -> Context:
        return await self._client.call(Context, "GET", f"/v1/contexts/{c.path_id(context_id)}")

    @c.operation("restore_context")
    async def restore(self, context_id: Id) -> bytes:
        """The content, byte-exact (read whole: use ``stream`` for a large one)."""
        chunks = [piece async for piece in self.stream(context_id)]
        return b"".join(chunks)

    async def stream(self, context_id: Id) -> AsyncIterator[bytes]:
        """The content in pieces as it arrives (``get`` says its size, type and SHA-256)."""
        async with self._client.stream("GET", f"/v1/contexts/{c.path_id(context_id)}/content") as response:
            async for piece in response.aiter_bytes():
                yield piece

    @c.operation("list_contexts")
    def list(self, filters: ContextFilters | None = None, /, **fields: Fields) -> AsyncPager[Context]:
        """Newest first, without their content. ``fields``: those of ``ContextFilters`` (user_id,
        external_user_id, team_id, agent_id, app_id, session_id, task_id, content_type, tags_any, tags_all,
        metadata, created_after, created_before, include_expired, cursor, limit)."""
        return AsyncPager(self._client, "/v1/contexts", Context, c.filters(ContextFilters, filters, fields))

    @c.operation("delete_context")
    async def delete(self, context_id: Id) -> None:
        await self._client.request("DELETE", f"/v1/contexts/{c.path_id(context_id)}")

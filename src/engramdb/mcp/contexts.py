"""The tools of offloaded contexts: move text out of the model's window and pull it back, piece by piece.
Each calls the service its REST route calls."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Annotated

from mcp.types import CallToolResult
from pydantic import Field

from engramdb import limits
from engramdb.mcp.base import Ctx, Resolver, result, tool_errors, user_ref
from engramdb.schemas.common import ExternalId, Name, PublicModel, Tag
from engramdb.schemas.contexts import Context, ContextCreate, ContextResult, MediaType
from engramdb.services.contexts import contexts, summaries

MAX_RESTORED_CHARS = 200_000  # of text (or bytes, as base64) one restore_context call returns


class RestoredContext(PublicModel):
    context: Context
    text: str | None = Field(description="The text from `offset` on (text contexts), at most `max_chars` of it.")
    base64: str | None = Field(description="Binary contexts: the bytes from `offset` on, base64-encoded.")
    offset: int
    next_offset: int | None = Field(description="Pass it as offset for the rest; null when this is the end.")


class ContextTools:
    _resolve: Resolver

    async def offload_context(
        self,
        ctx: Ctx,
        content: Annotated[
            str,
            Field(
                min_length=1,
                max_length=limits.MAX_CONTEXT_BYTES,
                description="The text to move out of your window: a transcript, a scratchpad, tool output.",
            ),
        ],
        title: Annotated[Name | None, Field(description="A short title; search finds it by it too.")] = None,
        content_type: Annotated[
            MediaType | None, Field(description="Its media type, e.g. text/markdown (default text/plain).")
        ] = None,
        tags: Annotated[list[Tag] | None, Field(max_length=limits.MAX_TAGS, description="Labels.")] = None,
        session_id: Annotated[uuid.UUID | None, Field(description="The session (conversation) it belongs to.")] = None,
        task_id: Annotated[uuid.UUID | None, Field(description="The task it belongs to.")] = None,
        ttl_s: Annotated[
            int | None, Field(ge=1, le=limits.MAX_CONTEXT_TTL_S, description="Forget it after this many seconds.")
        ] = None,
        external_user_id: Annotated[
            ExternalId | None,
            Field(description="Your application's id for the user it is about; leave out with a user-bound key."),
        ] = None,
        user_id: Annotated[uuid.UUID | None, Field(description="Engram's id for the user instead.")] = None,
    ) -> Annotated[CallToolResult, ContextResult]:
        """Offload a large piece of working context that no longer fits your window (up to 16 MiB): Engram
        stores it compressed, summarizes and indexes it, and returns its id. Find it again with search
        (types: ["contexts"]) and bring it back with restore_context. Offloading the same text twice stores
        it once."""
        with tool_errors():
            bound = await self._resolve(ctx)
            body = ContextCreate(
                content=content,
                title=title,
                content_type=content_type,
                tags=tags or [],
                session_id=session_id,
                task_id=task_id,
                ttl_s=ttl_s,
                **user_ref(bound.caller, user_id, external_user_id),
            )
            made = await contexts.create(bound.runtime, bound.caller, body, content.encode())
            return result(made)

    async def restore_context(
        self,
        ctx: Ctx,
        context_id: Annotated[uuid.UUID, Field(description="The id offload_context or search returned.")],
        offset: Annotated[
            int, Field(ge=0, description="Where to start: a character of a text, a byte of a binary context.")
        ] = 0,
        max_chars: Annotated[
            int, Field(ge=1, le=MAX_RESTORED_CHARS, description="How much to return at most (characters or bytes).")
        ] = 50_000,
    ) -> Annotated[CallToolResult, RestoredContext]:
        """Bring an offloaded context back into your window, exactly as it was stored: its text (or, for a
        binary one, its bytes as base64) from offset on, at most max_chars of it; next_offset continues a
        long one. The context's description (title, summary, sizes) comes with it."""
        with tool_errors():
            bound = await self._resolve(ctx)
            restored = await contexts.restore(bound.runtime.db, bound.caller, context_id)
            whole = await asyncio.to_thread(b"".join, restored)
            info = restored.context
            text = whole.decode(summaries.charset(info.content_type), errors="replace") if info.is_text else None
            size = len(text) if text is not None else len(whole)
            end = min(size, offset + max_chars)
            piece = text[offset:end] if text is not None else None
            encoded = None if text is not None else base64.b64encode(whole[offset:end]).decode()
            out = RestoredContext(
                context=info, text=piece, base64=encoded, offset=offset, next_offset=end if end < size else None
            )
            return result(out)

"""``client.contexts``: offload text and bytes (with progress), restore whole or streamed, list, delete."""

from __future__ import annotations

import random

import httpx
import pytest

from engramdb.sdk import AsyncClient, NotFoundError
from tests.conftest import OrgFactory


async def test_offload_restore_list_and_delete(app, make_org: OrgFactory) -> None:  # type: ignore[no-untyped-def]
    org = await make_org()
    async with AsyncClient("http://engram.test", org.key, transport=httpx.ASGITransport(app=app)) as client:
        text = await client.contexts.offload("a scratchpad about the flaky integration test", title="Scratch")
        assert text.action == "created" and text.context.content_type == "text/plain; charset=utf-8"
        data = random.Random(5).randbytes(1_500_000) + bytes(1_500_000)
        sent: list[int] = []
        blob = await client.contexts.offload(
            data, filename="dump.bin", tags=["core"], metadata={"pid": 42}, progress=sent.append
        )
        ctx = blob.context
        assert (ctx.content_type, ctx.tags, ctx.metadata) == ("application/octet-stream", ["core"], {"pid": 42})
        assert sent == [1_048_576, 2_097_152, len(data)]  # after each piece
        assert await client.contexts.restore(ctx.id) == data
        assert b"".join([piece async for piece in client.contexts.stream(ctx.id)]) == data
        again = await client.contexts.offload(data, filename="dump.bin")
        assert again.action == "unchanged" and again.context.id == ctx.id
        listed = await client.contexts.list(tags_any=["core"]).to_list(10)
        assert [c.id for c in listed] == [ctx.id]
        await client.contexts.delete(ctx.id)
        with pytest.raises(NotFoundError):
            await client.contexts.get(ctx.id)

"""The CLI's in-process transport streams an app's answer instead of collecting it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from engramdb.cli.asgi import StreamingASGITransport


class Counting:
    """An ASGI app that echoes the request body, then sends ``chunks`` pieces of 1 KiB."""

    def __init__(self, chunks: int, fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.sent = 0
        self.cancelled = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-echo", body)]})
        try:
            for i in range(self.chunks):
                if i == self.fail_at:
                    raise RuntimeError("boom")
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                self.sent += 1
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_the_body_streams_with_backpressure() -> None:
    app = Counting(1000)
    async with httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://t") as client:
        async with client.stream("POST", "/x", content=b"hello") as response:
            assert response.headers["x-echo"] == "hello"
            total = 0
            async for chunk in response.aiter_raw():
                if total == 0:
                    assert app.sent <= 20  # the app waits for the reader: the whole body is never held
                total += len(chunk)
    assert total == 1000 * 1024


async def test_closing_early_stops_the_app() -> None:
    app = Counting(10**9)
    async with httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://t") as client:
        async with client.stream("GET", "/x") as response:
            async for _ in response.aiter_raw():
                break
    assert app.cancelled and app.sent < 100


async def test_a_failure_mid_answer_is_a_read_error() -> None:
    app = Counting(10, fail_at=3)
    async with httpx.AsyncClient(transport=StreamingASGITransport(app), base_url="http://t") as client:
        with pytest.raises(httpx.ReadError, match="boom"):
            await client.get("/x")


async def test_a_failure_before_answering_is_raised() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("no answer")

    async with httpx.AsyncClient(transport=StreamingASGITransport(broken), base_url="http://t") as client:
        with pytest.raises(ValueError, match="no answer"):
            await client.get("/x")

"""MCP clients (the SDK's own) against the in-process app, over streamable HTTP at /mcp."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from engramdb.config import Settings
from engramdb.jobs import build_app, run_worker

BASE = "http://engram.test"
Connect = Callable[[str], AbstractAsyncContextManager[Client]]


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[Connect]:
    """Run the app's lifespan (httpx's ASGI transport does not) and hand out MCP clients, one per key."""

    @asynccontextmanager
    async def connect(key: str) -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), headers=headers, timeout=60) as http:
            async with Client(streamable_http_client(f"{BASE}/mcp", http_client=http)) as client:
                yield client

    async with app.router.lifespan_context(app):
        yield connect


def data(result: CallToolResult) -> Any:
    """The structured result of a call that succeeded, checked against the text the model reads."""
    assert not result.is_error, text(result)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def text(result: CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def error(result: CallToolResult) -> str:
    assert result.is_error, f"expected an error result, got {text(result)}"
    assert result.structured_content is None
    return text(result)


def parsed(result: CallToolResult) -> Any:
    return json.loads(text(result))


@pytest.fixture(scope="module")
async def worker(app: FastAPI, settings: Settings, database_url: str) -> AsyncIterator[None]:
    """A job worker in the test process (the app built for tests runs none), for extraction jobs."""
    task = asyncio.create_task(run_worker(build_app(database_url, settings), app.state.runtime, name="test-mcp"))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

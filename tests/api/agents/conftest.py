"""Fixtures of the agents tests: clients whose responses stream (live streams need it: httpx's own
ASGITransport returns a response only once the app has finished it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from engramdb.cli.asgi import StreamingASGITransport
from engramdb.sdk import AsyncClient

SdkFactory = Callable[[str], AsyncClient]


@pytest.fixture(scope="module")
async def sdk(app) -> AsyncIterator[SdkFactory]:  # type: ignore[no-untyped-def]
    """An SDK client over the in-process app for a key; the app's LISTEN connection closed at the end."""
    made: list[AsyncClient] = []

    def factory(key: str) -> AsyncClient:
        client = AsyncClient("http://engram.test", key, transport=StreamingASGITransport(app), max_retries=0)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()
    await app.state.runtime.listener.close()

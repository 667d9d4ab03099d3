"""Fixtures for the LLM provider tests: a fake OpenAI-compatible server and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from engramdb.providers.llm import ChatClient
from tests.providers.fake_openai import FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.close()


@pytest.fixture
async def chat(fake_openai: FakeOpenAI) -> AsyncIterator[ChatClient]:
    """A client with a short timeout and near-zero backoff, so failure paths stay fast."""
    client = ChatClient(
        base_url=fake_openai.base_url, model="fake-model", api_key="sk-test", timeout_s=0.3, backoff_s=0.01
    )
    yield client
    await client.aclose()

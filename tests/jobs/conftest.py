"""A job worker running in the test process, on the module's database and the app's runtime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from engramdb.config import Settings
from engramdb.jobs import build_app, run_worker
from tests.providers.fake_openai import FakeOpenAI


@pytest.fixture(scope="module")
async def worker(app, settings: Settings, database_url: str) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(run_worker(build_app(database_url, settings), app.state.runtime, name="test"))
    await asyncio.sleep(0.2)
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeOpenAI]:
    """A fake OpenAI-compatible server for the module (modules that use it override ``settings``)."""
    server = FakeOpenAI().start()
    yield server
    server.close()


def llm_settings(database_url: str, fake_llm: FakeOpenAI, **extra: Any) -> Settings:
    """Test settings with the LLM pointed at the fake server."""
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        llm_base_url=fake_llm.base_url,
        llm_model="fake-model",
        **extra,
    )

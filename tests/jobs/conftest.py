"""A job worker running in the test process, on the module's database and the app's runtime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from engramdb.config import Settings
from engramdb.jobs import build_app, run_worker


@pytest.fixture(scope="module")
async def worker(app, settings: Settings, database_url: str) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(run_worker(build_app(database_url, settings), app.state.runtime, name="test"))
    await asyncio.sleep(0.2)
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

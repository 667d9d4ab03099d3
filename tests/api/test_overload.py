"""Graceful overload: a saturated database pool or embedder queue is answered 503 ``overloaded`` with
Retry-After, at once, instead of queueing without bound; background work still waits its turn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx
import pytest

from engramdb.config import Settings
from engramdb.providers.embedder import Kind
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.server import create_app
from engramdb.storage.database import Database
from tests.conftest import Org, assert_problem, client_for

WAIT_MS = 100


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    """One connection and no overflow: holding it saturates the pool."""
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_wait_ms=WAIT_MS,
        embed_queue_texts=4,
    )


class SlowEmbedder:
    """The real model, each call held for a while (a busy CPU)."""

    def __init__(self, inner: MiniLMEmbedder, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s
        self.model, self.dimensions = inner.model, inner.dimensions

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        await asyncio.sleep(self.delay_s)
        return await self.inner.embed_batch(texts, kind=kind)


async def test_a_saturated_pool_answers_503_at_once(org: Org, db: Database, anon: httpx.AsyncClient) -> None:
    assert (await org.client.get("/v1/memories")).status_code == 200  # the app's first request builds its caches
    async with db.system():  # the only connection, held by someone else
        started = time.monotonic()
        answers = await asyncio.gather(
            org.client.get("/v1/memories"),
            org.client.post("/v1/memories", json={"content": "x"}),
            anon.get("/v1/health/ready"),
        )
        elapsed = time.monotonic() - started
        live = await anon.get("/v1/health/live")  # liveness needs no database
    for r in answers:
        body = assert_problem(r, 503)
        assert body["type"] == "urn:engramdb:problem:overloaded"
        assert r.headers["retry-after"] == "1"
    assert elapsed < 5.0, elapsed  # about WAIT_MS (0.1 s), not the pool's 30 s (slack for a loaded machine)
    assert live.status_code == 200
    # Free again: served as usual.
    assert (await org.client.get("/v1/memories")).status_code == 200


async def test_background_work_waits_for_a_connection(db: Database) -> None:
    """Outside a request the pool's own timeout applies: a job does not fail because the API is busy."""

    async def hold() -> None:
        async with db.system():
            await asyncio.sleep(WAIT_MS * 3 / 1000)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.02)
    await db.ping()  # waits past WAIT_MS for the holder to finish
    await holder


async def test_a_full_embedder_queue_answers_503(settings: Settings, embedder, org: Org) -> None:  # type: ignore[no-untyped-def]
    roomy = settings.model_copy(update={"db_pool_size": 8})
    db = Database.connect(roomy)  # a search holds its connection while its query is embedded
    try:
        slow = create_app(roomy, db=db, embedder=SlowEmbedder(embedder, delay_s=2.0))
        waiting_texts = slow.state.runtime.embedder
        async with client_for(slow, org.key) as c:
            # A search embeds one text: four are let in (4 waiting, the bound), a fifth is refused meanwhile.
            words = ("alpha", "beta", "gamma", "delta")
            waiting = [asyncio.ensure_future(c.post("/v1/search", json={"query": f"{w} one"})) for w in words]
            for _ in range(200):
                if waiting_texts.waiting == 4:
                    break
                await asyncio.sleep(0.01)
            assert waiting_texts.waiting == 4
            started = time.monotonic()
            shed = await c.post("/v1/search", json={"query": "epsilon three"})
            assert time.monotonic() - started < 1.5  # refused, not queued behind the model (2 s)
            body = assert_problem(shed, 503)
            assert body["type"] == "urn:engramdb:problem:overloaded" and "embedded" in str(body["detail"])
            assert shed.headers["retry-after"] == "1"
            assert [(await w).status_code for w in waiting] == [200] * 4
            assert waiting_texts.waiting == 0
            assert (await c.post("/v1/search", json={"query": "epsilon three"})).status_code == 200
    finally:
        await db.dispose()

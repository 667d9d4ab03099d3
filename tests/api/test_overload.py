"""Graceful overload: more requests than the process works on at once, a saturated database pool or a
full embedder queue are answered 503 ``overloaded`` with Retry-After, at once, instead of queueing without
bound; background work still waits its turn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx
import pytest

from engramdb import metrics
from engramdb.cli.asgi import StreamingASGITransport
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
        max_active_requests=50,  # the turns are tested on their own below
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


def _busy_rejections() -> float:
    return metrics.REGISTRY.get_sample_value("engram_overload_rejections_total", {"reason": "busy"}) or 0.0


async def test_past_its_active_requests_a_process_answers_503_after_a_short_wait(
    settings: Settings, embedder, org: Org, anon: httpx.AsyncClient
) -> None:  # type: ignore[no-untyped-def]
    """One request at work (a search whose embedding takes a second): the next waits its 50 ms and is told
    to come back, before touching the database; health is never held back; neither a stream nor a body
    that streams in holds a turn."""
    one = settings.model_copy(
        update={"db_pool_size": 8, "max_active_requests": 1, "admission_wait_ms": 50, "embed_queue_texts": 100}
    )
    db = Database.connect(one)
    try:
        app = create_app(one, db=db, embedder=SlowEmbedder(embedder, delay_s=1.0))
        transport = StreamingASGITransport(app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://engram.test", headers={"Authorization": f"Bearer {org.key}"}
        ) as c:
            assert (await c.get("/v1/memories")).status_code == 200
            before = _busy_rejections()
            search = asyncio.ensure_future(c.post("/v1/search", json={"query": "a slow one"}))
            while app.state.runtime.embedder.waiting == 0:  # the search holds the only turn, in the model
                await asyncio.sleep(0.01)
            started = time.monotonic()
            shed = await c.get("/v1/memories")
            assert time.monotonic() - started < 0.9  # refused after its wait, not after the search
            body = assert_problem(shed, 503)
            assert body["type"] == "urn:engramdb:problem:overloaded"
            assert "ENGRAM_MAX_ACTIVE_REQUESTS is 1" in str(body["detail"])
            assert shed.headers["retry-after"] == "1"
            assert _busy_rejections() == before + 1
            assert (await anon.get("/v1/health/live")).status_code == 200  # not a /v1 request that waits
            # An offload's body streams in at the sender's pace: it takes no turn, so it is not refused.
            offload = await c.post("/v1/contexts", content=b"notes of the day", headers={"Content-Type": "text/plain"})
            assert offload.status_code == 201, offload.text
            assert (await search).status_code == 200
            assert (await c.get("/v1/memories")).status_code == 200  # the turn was given back

            # A stream gives its turn back once its answer starts: other requests go on meanwhile.
            async with c.stream("GET", "/v1/tasks/stream", params={"queue": "q"}) as stream:
                assert stream.status_code == 200
                assert (await c.get("/v1/memories")).status_code == 200
                assert (await c.post("/v1/tasks", json={"title": "t", "queue": "q"})).status_code == 201
        await app.state.runtime.listener.close()
    finally:
        await db.dispose()

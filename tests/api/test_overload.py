"""Graceful overload: more requests than the process works on at once, a saturated database pool or a
full embedder queue are answered 503 ``overloaded`` with Retry-After, at once, instead of queueing without
bound; background work still waits its turn."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from engramdb import limits, metrics
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


@asynccontextmanager
async def _one_turn(
    settings: Settings, embedder: MiniLMEmbedder, key: str
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """An app that works on one request at a time (50 ms wait), whose model takes a second per call."""
    one = settings.model_copy(
        update={"db_pool_size": 8, "max_active_requests": 1, "admission_wait_ms": 50, "embed_queue_texts": 100}
    )
    db = Database.connect(one)
    try:
        app = create_app(one, db=db, embedder=SlowEmbedder(embedder, delay_s=1.0))
        async with httpx.AsyncClient(
            transport=StreamingASGITransport(app),
            base_url="http://engram.test",
            headers={"Authorization": f"Bearer {key}"},
        ) as c:
            assert (await c.get("/v1/memories")).status_code == 200
            yield app, c
        await app.state.runtime.listener.close()
    finally:
        await db.dispose()


async def test_past_its_active_requests_a_process_answers_503_after_a_short_wait(
    settings: Settings, embedder: MiniLMEmbedder, org: Org, anon: httpx.AsyncClient
) -> None:
    """One request at work (a search whose embedding takes a second): the next waits its 50 ms and is told
    to come back, before touching the database; health is never held back; a stream holds no turn."""
    async with _one_turn(settings, embedder, org.key) as (app, c):
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
        # An offload waits its turn too once its body is in (here: refused, the search still holds it).
        offload = await c.post("/v1/contexts", content=b"notes of the day", headers={"Content-Type": "text/plain"})
        assert_problem(offload, 503)
        assert (await search).status_code == 200
        assert (await c.get("/v1/memories")).status_code == 200  # the turn was given back

        # A stream gives its turn back once its answer starts: other requests go on meanwhile.
        async with c.stream("GET", "/v1/tasks/stream", params={"queue": "q"}) as stream:
            assert stream.status_code == 200
            assert (await c.get("/v1/memories")).status_code == 200
            assert (await c.post("/v1/tasks", json={"title": "t", "queue": "q"})).status_code == 201


async def test_a_slow_sender_and_a_waiting_request_hold_no_turn(
    settings: Settings, embedder: MiniLMEmbedder, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An offload whose body is still arriving, and a request that waits for the job it queued
    (``wait=true``), leave the one turn to others meanwhile."""
    async with _one_turn(settings, embedder, org.key) as (_, c):
        more = asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield b"the first half of the notes, "
            await more.wait()
            yield b"and the second"

        headers = {"Content-Type": "text/plain"}
        offload = asyncio.ensure_future(c.post("/v1/contexts", content=slow_body(), headers=headers))
        await asyncio.sleep(0.2)  # the offload is in, its body half read
        assert (await c.get("/v1/memories")).status_code == 200  # not refused: the sender holds no turn
        more.set()
        assert (await offload).status_code == 201

        monkeypatch.setattr(limits, "WAIT_TIMEOUT_S", 3.0)  # no worker runs here: the job stays queued
        sid = (await c.post("/v1/sessions", json={"external_user_id": "waiter"})).json()["id"]
        body = {"messages": [{"role": "user", "content": "I moved to Porto."}]}
        adding = asyncio.ensure_future(c.post(f"/v1/sessions/{sid}/messages", params={"wait": "true"}, json=body))
        served = False
        while not adding.done():  # refused while the messages are embedded (a second), served once it waits
            if (await c.get("/v1/memories")).status_code == 200:
                served = True
                break
            await asyncio.sleep(0.05)
        assert served and not adding.done()
        added = await adding
        assert added.status_code == 201 and added.json()["job"]["status"] == "queued"

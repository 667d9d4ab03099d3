"""The embedding backfill: deferred rows get vectors, and one row the embedder refuses holds nothing up."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence

import psycopg
import pytest

from engramdb.config import Settings
from engramdb.errors import ConfigurationError
from engramdb.providers.embedder import HashEmbedder, Kind
from engramdb.schemas.conversations import MessageBatch, SessionCreate
from engramdb.services.conversation import messages, sessions
from engramdb.services.core.runtime import Runtime
from engramdb.services.maintenance import backfill
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database
from engramdb.storage.migrate import check_language


class Picky(HashEmbedder):
    """Refuses any text containing POISON, as a provider refuses an over-long input."""

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        if any("POISON" in t for t in texts):
            raise ValueError("input refused")
        return await super().embed_batch(texts, kind=kind)


async def test_a_poisoned_row_is_marked_and_the_rest_embedded(db: Database, database_url: str) -> None:
    rt = Runtime.build(Settings(database_url=database_url), db, embedder=Picky(384))
    rows = []
    for name in ("first", "second"):
        org, key = await keys.create_organization(db, name=f"backfill-{name}")
        caller = await keys.authenticate(db, key.api_key)
        s = await sessions.create(db, caller, SessionCreate())
        contents = ["POISON pill", "fine text"] if name == "first" else ["another org's text"]
        batch = MessageBatch(defer_embedding=True, messages=[{"role": "user", "content": c} for c in contents])
        added, _ = await messages.add(rt, caller, s.id, batch)
        rows += added
    assert await backfill.count_pending(rt, other_models=False) == 3
    assert await backfill.backfill(rt, batch_size=2) == 3
    assert await backfill.count_pending(rt, other_models=False) == 0
    with psycopg.connect(database_url) as conn:
        models = dict(conn.execute("SELECT content, embedding_model FROM message").fetchall())
    assert models == {"POISON pill": "failed:hash-384", "fine text": "hash-384", "another org's text": "hash-384"}
    # `engramdb reembed` (other models) retries the failed row once per run and then stops.
    assert await backfill.backfill(rt, other_models=True) == 1


class Slow(HashEmbedder):
    """Records every text it embeds and takes a moment over each batch, so the lanes overlap."""

    def __init__(self, dimensions: int) -> None:
        super().__init__(dimensions)
        self.seen: list[str] = []

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        self.seen += texts
        await asyncio.sleep(0.02)
        return await super().embed_batch(texts, kind=kind)


async def test_lanes_embed_every_row_once(db: Database, database_url: str) -> None:
    """Several batches in flight at once still embed each pending row exactly once, in every org, also when
    `engramdb reembed` walks rows a lane refused (they are claimed once per run, not once per lane)."""
    embedder = Slow(384)
    rt = Runtime.build(Settings(database_url=database_url, message_vectors="turn"), db, embedder=embedder)
    contents: list[str] = []
    for n in range(3):
        org, key = await keys.create_organization(db, name=f"lanes-{uuid.uuid4().hex[:6]}")
        caller = await keys.authenticate(db, key.api_key)
        s = await sessions.create(db, caller, SessionCreate())
        texts = [f"org {n} turn {i}" for i in range(17)]
        batch = MessageBatch(defer_embedding=True, messages=[{"role": "user", "content": c} for c in texts])
        await messages.add(rt, caller, s.id, batch)
        contents += texts
    progress: list[int] = []
    assert await backfill.backfill(rt, batch_size=4, lanes=3, on_progress=progress.append) == 51
    # A turn is embedded with its date in front ("[4 December 2026] org 0 turn 3").
    assert sorted(text.partition("] ")[2] for text in embedder.seen) == sorted(contents)
    assert sum(progress) == 51
    assert await backfill.count_pending(rt, other_models=False) == 0
    # These rows now carry the model: a reembed run retries only rows refused earlier (another test's, in
    # this module's database), each once, however many lanes it runs.
    with psycopg.connect(database_url) as conn:
        (refused,) = conn.execute("SELECT count(*) FROM message WHERE embedding_model LIKE 'failed:%'").fetchone()
    embedder.seen.clear()
    assert await backfill.backfill(rt, other_models=True, batch_size=1, lanes=3) == refused
    assert not {text.partition("] ")[2] for text in embedder.seen} & set(contents)


async def test_a_failing_lane_raises_its_own_error(db: Database, database_url: str) -> None:
    """A lane's failure stops the run with that error (not a group of them), so callers such as `engramdb
    reembed` report it as before; the rows it did not finish stay pending."""
    rt = Runtime.build(Settings(database_url=database_url, message_vectors="turn"), db, embedder=Slow(384))
    org, key = await keys.create_organization(db, name=f"lane-fails-{uuid.uuid4().hex[:6]}")
    caller = await keys.authenticate(db, key.api_key)
    s = await sessions.create(db, caller, SessionCreate())
    batch = MessageBatch(defer_embedding=True, messages=[{"role": "user", "content": f"turn {i}"} for i in range(9)])
    await messages.add(rt, caller, s.id, batch)

    def refuse(n: int) -> None:
        raise ValueError("progress display gone")

    with pytest.raises(ValueError, match="progress display gone"):
        await backfill.backfill(rt, batch_size=2, lanes=2, on_progress=refuse)
    assert await backfill.count_pending(rt, other_models=False) > 0
    assert await backfill.backfill(rt, batch_size=2, lanes=2) > 0
    assert await backfill.count_pending(rt, other_models=False) == 0


async def test_a_deferred_write_in_another_process_wakes_the_backfill(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's loop polls only every interval_s (an hour here): rows written with defer_embedding by
    another process (its own runtime and LISTEN connection) are embedded because the write announced them."""
    settings = Settings(database_url=database_url)
    server, other = (Runtime.build(settings, db, embedder=HashEmbedder(384)) for _ in range(2))
    passes: asyncio.Queue[int] = asyncio.Queue()
    one_pass = backfill.backfill

    async def counted(rt: Runtime, **kwargs: object) -> int:
        done = await one_pass(rt, **kwargs)  # type: ignore[arg-type]
        passes.put_nowait(done)
        return done

    monkeypatch.setattr(backfill, "backfill", counted)
    loop = asyncio.create_task(backfill.run(server, interval_s=3600))
    try:
        await asyncio.wait_for(server.listener.connected.wait(), timeout=30)
        await asyncio.wait_for(passes.get(), timeout=30)  # the loop's first look, before anything is written
        org, key = await keys.create_organization(db, name=f"backfill-wake-{uuid.uuid4().hex[:6]}")
        caller = await keys.authenticate(db, key.api_key)
        s = await sessions.create(db, caller, SessionCreate())
        batch = MessageBatch(defer_embedding=True, messages=[{"role": "user", "content": "woken, not polled"}])
        await messages.add(other, caller, s.id, batch)
        embedded = 0
        while not embedded:  # a pass that found nothing (an earlier wake-up) is followed by the one that does
            embedded = await asyncio.wait_for(passes.get(), timeout=30)
        assert embedded == 1 and await backfill.count_pending(server, other_models=False) == 0
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        for rt in (server, other):
            await rt.listener.close()


def test_search_language_is_checked(database_url: str) -> None:
    check_language(database_url, "english")
    with pytest.raises(ConfigurationError, match="klingon"):
        check_language(database_url, "klingon")

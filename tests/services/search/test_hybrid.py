"""Hybrid search takes no database connection while its query waits behind others at the model."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from engramdb.config import Settings
from engramdb.providers.embedder import HashEmbedder
from engramdb.providers.embedding import Kind
from engramdb.schemas.search import SearchRequest
from engramdb.services.core.runtime import Runtime
from engramdb.services.search import hybrid
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database


class GatedEmbedder(HashEmbedder):
    """Query vectors wait for ``gate``: the model is busy with other queries."""

    def __init__(self) -> None:
        super().__init__(384)
        self.gate = asyncio.Event()

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        if kind == "query":
            await self.gate.wait()
        return await super().embed_batch(texts, kind=kind)


async def test_a_search_queued_at_the_model_holds_no_connection(db: Database, database_url: str) -> None:
    embedder = GatedEmbedder()
    rt = Runtime.build(Settings(database_url=database_url), db, embedder=embedder)
    _, key = await keys.create_organization(db, name="busy-model")
    caller = await keys.authenticate(db, key.api_key)
    pool = db.engine.sync_engine.pool
    idle = pool.checkedout()  # type: ignore[attr-defined]
    req = SearchRequest(query="anything at all")
    first = asyncio.create_task(hybrid.search(rt, caller, req))  # alone at the model: overlaps the database
    await asyncio.sleep(0.3)
    assert pool.checkedout() == idle + 1  # type: ignore[attr-defined]
    second = asyncio.create_task(hybrid.search(rt, caller, req))  # behind the first: waits without one
    await asyncio.sleep(0.3)
    assert pool.checkedout() == idle + 1  # type: ignore[attr-defined]
    embedder.gate.set()
    for task in (first, second):
        response, _ = await task
        assert response.results == []
    assert hybrid._embedding_now == 0

"""Hybrid search takes no database connection while its query waits behind others at the model."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from engramdb import metrics
from engramdb.config import Settings
from engramdb.providers.embedder import HashEmbedder
from engramdb.providers.embedding import Kind
from engramdb.schemas.conversations import MessageBatch, SessionCreate
from engramdb.schemas.directory import ApiKeyCreate
from engramdb.schemas.search import SearchRequest
from engramdb.services.conversation import messages, sessions
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.search import hybrid
from engramdb.services.tenancy import keys
from engramdb.services.tenancy.directory import find_external_user
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


async def test_kept_statements_never_cross_scopes(db: Database, database_url: str) -> None:
    """The retrievers' statements are built once per scope and reused (``rt.statements``): each user's
    search, whether named by an unbound key or made with a key bound to that user, sees that user's turns
    only, however warm the runtime is, and another organization's search sees its own."""
    rt = Runtime.build(Settings(database_url=database_url), db, embedder=HashEmbedder(384))
    orgs = []
    for org_name in ("kept-a", "kept-b"):
        _, key = await keys.create_organization(db, name=f"{org_name}-{uuid.uuid4().hex[:6]}")
        admin = await keys.authenticate(db, key.api_key)
        for user in ("alice", "bob"):
            s = await sessions.create(db, admin, SessionCreate(external_user_id=user))
            turn = {"role": "user", "content": f"{user} of {org_name} keeps the zorbank ledger"}
            await messages.add(rt, admin, s.id, MessageBatch(messages=[turn], extract=False))
        orgs.append((org_name, admin))

    async def seen(caller: Caller, user: str | None) -> set[str]:
        req = SearchRequest(query="zorbank ledger", external_user_id=user, types=["messages"])
        response, _ = await hybrid.search(rt, caller, req)
        return {r.content for r in response.results}

    def counted(outcome: str) -> float:
        return metrics.REGISTRY.get_sample_value("engram_search_statements_total", {"outcome": outcome}) or 0.0

    sizes, reused = [], []
    for _ in range(2):  # the second round runs on kept statements only
        kept_before = counted("kept")
        for org_name, admin in orgs:
            for user in ("alice", "bob"):
                assert await seen(admin, user) == {f"{user} of {org_name} keeps the zorbank ledger"}
        sizes.append(len(rt.statements))
        reused.append(counted("kept") - kept_before)
    assert reused == [0, 16]  # /metrics counts them
    # Four scopes, each with keyword and vector statements over messages and over the memories behind
    # them (provenance): sixteen; the second round reuses them all.
    assert sizes == [16, 16]
    kept = sizes[1]
    org_name, admin = orgs[0]
    bob_id = await seen_user(db, admin, "bob")
    bound = await keys.create_key(db, admin, ApiKeyCreate(name="bob only", user_id=bob_id))
    as_bob = await keys.authenticate(db, bound.api_key)
    assert await seen(as_bob, None) == {f"bob of {org_name} keeps the zorbank ledger"}
    assert len(rt.statements) > kept  # a bound key's conditions are other SQL: statements of its own
    assert await seen(admin, "alice") == {f"alice of {org_name} keeps the zorbank ledger"}


async def seen_user(db: Database, caller: Caller, external_id: str) -> uuid.UUID:
    async with db.read(caller.org_id) as conn:
        found = await find_external_user(conn, caller, external_id)
    assert found is not None
    return found

"""Offloaded contexts below the API: the zstandard frame, the representative text (extractive, and the LLM's
when one is configured, falling back when it fails), and the retention sweep's removal of expired ones."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import zstandard

from engramdb import limits
from engramdb.config import Settings
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.schemas.contexts import ContextCreate
from engramdb.schemas.search import SearchRequest
from engramdb.services.contexts import compression, contexts, summaries
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.governance import retention
from engramdb.services.search import hybrid as search
from engramdb.storage.database import Database
from engramdb.storage.vectors import index_name
from tests.conftest import OrgFactory
from tests.providers.fake_openai import FakeOpenAI, error, good


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.close()


def test_a_frame_restores_byte_exact_in_pieces_and_damage_is_refused() -> None:
    data = random.Random(3).randbytes(300_000) + b"\x00" * 500_000
    frame = compression.compress(data)
    pieces = list(compression.restore(frame, chunk=65_536))
    assert b"".join(pieces) == data and len(pieces) > 1 and max(map(len, pieces)) <= 65_536
    assert len(frame) < len(data) * 0.5
    damaged = bytearray(frame)
    damaged[len(damaged) // 2] ^= 0xFF
    with pytest.raises(zstandard.ZstdError):
        compression.restore_all(bytes(damaged))


def test_the_extractive_summary_keeps_the_lead_and_the_recurring_topic() -> None:
    text = (
        "Session log of the database migration. "
        + "We talked about lunch and the weather for a while. " * 3
        + "The migration of the invoices table failed on the foreign key to customers. "
        + "Retrying the migration after fixing the invoices foreign key worked. "
        + "Someone mentioned a film. "
    )
    summary = summaries.extractive(text, 160)
    assert summary.startswith("Session log of the database migration.")
    assert "invoices" in summary and "lunch" not in summary and len(summary) <= 160


def test_text_is_recognised_by_its_charset_and_binary_is_not() -> None:
    assert summaries.text_of("Grüße".encode("latin-1"), "text/plain; charset=latin-1") == "Grüße"
    assert summaries.text_of("Grüße".encode("latin-1"), "text/plain") is None  # not UTF-8
    assert summaries.text_of(b"\x00\x01\x02", "application/octet-stream") is None


async def test_the_llm_writes_the_summary_and_a_failure_falls_back(
    make_org: OrgFactory, db: Database, embedder: MiniLMEmbedder, database_url: str, fake_llm: FakeOpenAI
) -> None:
    settings = Settings(database_url=database_url, llm_base_url=fake_llm.base_url, llm_model="fake-model")
    rt = Runtime.build(settings, db, embedder=embedder)
    org = await make_org()
    caller = Caller.operator(org.id)
    try:
        fake_llm.script(good({"summary": "Notes on the failed billing canary and its rollback."}))
        body = ContextCreate(content="Canary failed. Rolled back to build 4411.", title="Deploy")
        made = await contexts.create(rt, caller, body, body.content.encode())
        assert made.context.summary == "Deploy\nNotes on the failed billing canary and its rollback."
        assert made.context.summary_source == "llm"
        sent = fake_llm.requests[-1]["messages"][-1]["content"]
        assert "Canary failed. Rolled back to build 4411." in sent
        fake_llm.always(error(500, "down"))
        other = ContextCreate(content="A second scratchpad about the queue backlog.")
        fallback = await contexts.create(rt, caller, other, other.content.encode())
        assert fallback.context.summary_source == "extractive"
        assert fallback.context.summary == "A second scratchpad about the queue backlog."
    finally:
        await rt.close()


async def test_a_large_scope_finds_contexts_through_their_hnsw_index(
    make_org: OrgFactory, db: Database, embedder: MiniLMEmbedder, database_url: str
) -> None:
    org = await make_org()
    caller = Caller.operator(org.id)
    rt = Runtime.build(Settings(database_url=database_url, exact_search_limit=0), db, embedder=embedder)
    texts = ("Kubernetes deploy runbook for the billing service.", "Notes on a sourdough starter.", "Tax forms.")
    made = [(await contexts.create(rt, caller, ContextCreate(content=x), x.encode())).context for x in texts]
    req = SearchRequest(
        query="how do we deploy on kubernetes", mode="vector", types=["contexts"], top_k=1, candidates=2, explain=True
    )
    response, _ = await search.search(rt, caller, req)
    (hit,) = response.results
    assert (hit.type, hit.id) == ("context", made[0].id)
    assert hit.explanation is not None and hit.explanation.vector_method == "hnsw"
    async with db.system() as conn:  # and the index it asked for is there (made at start-up, as for memories)
        found = await conn.exec_driver_sql(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'offloaded_context' AND indexname = %s",
            (index_name("offloaded_context", embedder.model),),
        )
        assert found.all()


async def test_the_retention_sweep_removes_expired_contexts(make_org: OrgFactory, app, db: Database) -> None:  # type: ignore[no-untyped-def]
    org = await make_org()
    rt: Runtime = app.state.runtime
    caller = Caller.operator(org.id)
    keep = ContextCreate(content="kept for now", ttl_s=limits.MAX_CONTEXT_TTL_S)
    gone = ContextCreate(content="expired long ago", ttl_s=60)
    kept = (await contexts.create(rt, caller, keep, keep.content.encode())).context
    expired = (await contexts.create(rt, caller, gone, gone.content.encode())).context
    async with db.system() as conn:
        await conn.exec_driver_sql(
            "UPDATE offloaded_context SET expires_at = now() - interval '1 day' WHERE id = %s", (expired.id,)
        )
    assert await retention.sweep(rt) >= 1
    async with db.system() as conn:
        left = (await conn.exec_driver_sql("SELECT id FROM offloaded_context WHERE org_id = %s", (org.id,))).all()
    assert [row[0] for row in left] == [kept.id]

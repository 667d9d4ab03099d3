"""The extraction job called directly, with an extractor of our own (the extension point third parties use)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import psycopg

from engramdb.config import Settings
from engramdb.providers.embedder import HashEmbedder
from engramdb.providers.extraction import EntityCandidate, Extraction, FactCandidate, MemoryCandidate, Turn
from engramdb.providers.extraction.factory import Intelligence
from engramdb.providers.extraction.offline import OfflineSummarizer
from engramdb.schemas.audit import AuditFilters
from engramdb.schemas.conversations import MessageBatch, SessionCreate
from engramdb.services.conversation import messages, sessions
from engramdb.services.core import audit, jobs
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.distill import extraction
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database


class Careless:
    """Proposes one fact the database must refuse (confidence above 1) and one good memory."""

    name = "careless"

    async def extract(
        self, turns: Sequence[Turn], *, context: Sequence[Turn] = (), categories: Sequence[str] = ()
    ) -> Extraction:
        ids = tuple(t.id for t in turns)
        return Extraction(
            memories=[MemoryCandidate("Zed collects stamps.", "fact", ids, speaker="Zed")],
            facts=[FactCandidate("Zed", "collects", "stamps", ids, confidence=1.5)],
        )


async def test_a_refused_candidate_is_left_out_and_reported_not_the_whole_batch(
    db: Database, database_url: str
) -> None:
    intel = Intelligence(Careless(), OfflineSummarizer(), offline=False)
    rt = Runtime.build(Settings(database_url=database_url), db, embedder=HashEmbedder(384), intelligence=intel)
    org, key = await keys.create_organization(db, name="careless")
    caller = await keys.authenticate(db, key.api_key)
    s = await sessions.create(db, caller, SessionCreate())
    batch = MessageBatch(messages=[{"role": "user", "name": "Zed", "content": "I collect stamps."}])
    _, job_id = await messages.add(rt, caller, s.id, batch)
    assert job_id is not None
    result = await extraction.run(rt, org.id, job_id, attempt=1, final=True)
    assert result is not None
    assert result["rejected"] == 1 and result["memories_add"] == 1
    assert "ck_fact_confidence" in result["rejected_examples"][0]
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status, result->>'rejected' FROM job WHERE id = %s", (job_id,)).fetchone()
        seq = conn.execute("SELECT extracted_seq FROM session WHERE id = %s", (s.id,)).fetchone()
    assert row == ("succeeded", "1") and seq == (1,)
    # Each write is audited as the job's; the refused fact, rolled back, left no row.
    audited = await _audited(db, caller, job_id)
    assert sorted(audited) == ["entity.created", "memory.created"], audited
    # Run again (a duplicate delivery): nothing new to do, nothing done twice, nothing audited twice.
    again = await extraction.run(rt, org.id, job_id, attempt=2, final=True)
    assert again is None
    assert await _audited(db, caller, job_id) == audited


class Namer:
    """Names one entity per message: the message's text is ``name[:type[:alias]]``."""

    name = "namer"

    async def extract(
        self, turns: Sequence[Turn], *, context: Sequence[Turn] = (), categories: Sequence[str] = ()
    ) -> Extraction:
        name, kind, *aliases = (*turns[0].content.split(":"), "other")[:3]
        return Extraction(entities=[EntityCandidate(name, kind, tuple(aliases))])  # type: ignore[arg-type]


async def test_entities_that_extraction_creates_or_enriches_are_audited_a_mere_mention_is_not(
    db: Database, database_url: str
) -> None:
    intel = Intelligence(Namer(), OfflineSummarizer(), offline=False)
    rt = Runtime.build(Settings(database_url=database_url), db, embedder=HashEmbedder(384), intelligence=intel)
    org, key = await keys.create_organization(db, name="namer")
    caller = await keys.authenticate(db, key.api_key)
    s = await sessions.create(db, caller, SessionCreate())
    found = []
    for text in ("Robert", "Robert:person:Bob", "Robert:person:Bob"):
        batch = MessageBatch(messages=[{"role": "user", "content": text}])
        _, job_id = await messages.add(rt, caller, s.id, batch)
        assert job_id is not None
        assert await extraction.run(rt, org.id, job_id, attempt=1, final=True)
        found.append(await _audited(db, caller, job_id, actor="extractor:namer"))
    assert found == [["entity.created"], ["entity.updated"], []]
    rows = (await audit.list_entries(db, caller, AuditFilters(entity_type="entity"))).data
    assert [r.details for r in rows] == [{"fields": ["aliases", "type"]}, {"name": "Robert"}]


async def _audited(db: Database, caller: Caller, job_id: uuid.UUID, *, actor: str = "extractor:careless") -> list[str]:
    """The actions of the audit rows job ``job_id`` wrote, as the audit API lists them."""
    rows = (await audit.list_entries(db, caller, AuditFilters(limit=200))).data
    mine = [r for r in rows if r.request_id == f"job:{job_id}"]
    assert all(r.actor == actor and r.key_id is None for r in mine)
    return [r.action for r in mine]


async def test_a_job_whose_queue_entry_ended_without_it_is_queued_again(db: Database, database_url: str) -> None:
    rt = Runtime.build(Settings(database_url=database_url), db, embedder=HashEmbedder(384))
    org, key = await keys.create_organization(db, name="orphans")
    caller = await keys.authenticate(db, key.api_key)
    s = await sessions.create(db, caller, SessionCreate())
    batch = MessageBatch(messages=[{"role": "user", "name": "Ola", "content": "I live in Oslo."}])
    _, job_id = await messages.add(rt, caller, s.id, batch)
    with psycopg.connect(database_url, autocommit=True, options="-c search_path=procrastinate,public") as conn:
        # A worker stopped in the middle of the job's final attempt: the queue gave up, the job is owed.
        (queue_job,) = conn.execute("SELECT queue_job_id FROM job WHERE id = %s", (job_id,)).fetchone() or (None,)
        conn.execute("UPDATE procrastinate.procrastinate_jobs SET status = 'aborted' WHERE id = %s", (queue_job,))
        conn.execute("UPDATE job SET status = 'running' WHERE id = %s", (job_id,))
    assert await jobs.requeue_orphans(db, quiet_s=0) >= 1
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT j.status, q.status, q.args->>'job_id' FROM job j"
            " JOIN procrastinate.procrastinate_jobs q ON q.id = j.queue_job_id WHERE j.id = %s",
            (job_id,),
        ).fetchone()
    assert row == ("queued", "todo", str(job_id))
    assert await jobs.requeue_orphans(db, quiet_s=0) == 0  # queued again once, not twice
    result = await extraction.run(rt, org.id, job_id, attempt=1, final=True)
    assert result is not None and result["messages"] == 1

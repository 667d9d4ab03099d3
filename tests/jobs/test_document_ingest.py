"""Large documents are ingested by a background job: 202 with the job at once, progress in the job, the
bytes kept until it ends, a bound per organization, refusals at once where they can be, and a worker
that stops in the middle leaves the ingest queued for the next one (issue 19, item 8)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from engramdb.config import Settings
from engramdb.jobs import build_app, run_worker
from engramdb.providers.embedder import HashEmbedder
from engramdb.providers.embedding import Kind
from engramdb.sdk import AsyncClient, UnprocessableEntityError
from engramdb.server import create_app
from engramdb.services.document import ingest
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from tests.conftest import Org, OrgFactory, assert_problem

INLINE = 2048
PER_ORG = 3


class SlowEmbedder(HashEmbedder):
    """Hash vectors, each batch taking ``delay`` seconds: long enough to stop a worker in the middle."""

    def __init__(self) -> None:
        super().__init__(384)
        self.delay = 0.0

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        await asyncio.sleep(self.delay)
        return await super().embed_batch(texts, kind=kind)


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        document_inline_bytes=INLINE,
        document_queue_per_org=PER_ORG,
        worker_stalled_s=1,
    )


@pytest.fixture(scope="module")
def slow() -> SlowEmbedder:
    return SlowEmbedder()


@pytest.fixture(scope="module")
def app(settings: Settings, db: Database, slow: SlowEmbedder):  # type: ignore[no-untyped-def]
    return create_app(settings, db=db, embedder=slow)


@contextlib.asynccontextmanager
async def running_worker(app: Any, settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    assert settings.database_url is not None
    task = asyncio.create_task(run_worker(build_app(settings.database_url, settings), app.state.runtime, name="docs"))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def sections(n: int, word: str = "alpha") -> str:
    """A Markdown text of ``n`` sections: one chunk each."""
    body = "{w} number {i} says something about part {i} here."
    parts = [f"## Part {i}\n\n" + " ".join([body.format(w=word, i=i)] * 12) for i in range(n)]
    return "\n\n".join(parts) + "\n"


async def job_of(org: Org, job_id: str) -> dict[str, Any]:
    r = await org.client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def until(org: Org, job_id: str, done: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = await job_of(org, job_id)
        if done(job):
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.05)


async def uploads(db: Database, org: Org) -> int:
    async with db.tenant(org.id) as conn:
        count = await conn.scalar(select(func.count()).select_from(t.document_upload))
    return int(count or 0)


async def test_a_large_document_is_queued_and_then_ingested_by_a_worker(
    app: Any, settings: Settings, db: Database, make_org: OrgFactory
) -> None:
    org = await make_org()
    text = sections(20)
    assert len(text.encode()) > INLINE
    r = await org.client.post("/v1/documents", json={"content": text, "title": "Big", "tags": ["t"]})
    assert r.status_code == 202, r.text
    queued = r.json()
    assert queued["status"] == "queued" and queued["job"]["kind"] == "engram.ingest_document"
    assert r.headers["location"] == f"/v1/jobs/{queued['job']['id']}"
    assert (await org.client.get("/v1/documents")).json()["data"] == []  # nothing is written yet
    assert await uploads(db, org) == 1
    async with running_worker(app, settings):
        job = await until(org, queued["job"]["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["action"] == "created" and result["chunks"]["added"] == 20
    doc = (await org.client.get(f"/v1/documents/{result['document_id']}")).json()
    assert doc["title"] == "Big" and doc["tags"] == ["t"] and doc["chunk_count"] == 20
    assert await uploads(db, org) == 0  # the bytes go when the job ends


async def test_a_small_document_stays_inline_unless_asked_and_a_patch_is_queued_too(
    app: Any, settings: Settings, make_org: OrgFactory
) -> None:
    org = await make_org()
    r = await org.client.post("/v1/documents", json={"content": "A short note about beta."})
    assert r.status_code == 201, r.text
    doc_id = r.json()["document"]["id"]
    r = await org.client.post("/v1/documents?background=true", json={"content": "Another short note."})
    assert r.status_code == 202, r.text
    queued = r.json()["job"]["id"]
    r = await org.client.patch(f"/v1/documents/{doc_id}", json={"content": sections(20, "gamma")})
    assert r.status_code == 202, r.text
    patched = r.json()["job"]["id"]
    async with running_worker(app, settings):
        for job_id in (queued, patched):
            job = await until(org, job_id, lambda j: j["status"] in ("succeeded", "failed"))
            assert job["status"] == "succeeded", job
    doc = (await org.client.get(f"/v1/documents/{doc_id}")).json()
    assert doc["chunk_count"] == 20 and "gamma" in doc["content"]


async def test_what_can_be_refused_at_once_is_and_the_rest_fails_the_job_with_its_problem(
    app: Any, settings: Settings, make_org: OrgFactory
) -> None:
    org = await make_org()
    big = sections(20)
    # Refused before anything is queued: a PDF sent as text, a document that is not there.
    pdf_text = "%PDF-1.4\n" + big
    assert_problem(await org.client.post("/v1/documents", json={"content": pdf_text, "path": "a.pdf"}), 415)
    missing = uuid.uuid4()
    assert_problem(await org.client.patch(f"/v1/documents/{missing}", json={"content": big}), 404)
    assert (await org.client.get("/v1/jobs", params={"kind": "engram.ingest_document"})).json()["data"] == []
    # Found only by parsing: a file with no text in it fails its job, for good, with the problem.
    blank = b"\n \n" * 1000
    files = {"file": ("blank.txt", blank, "text/plain")}
    r = await org.client.post("/v1/documents/upload", files=files)
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    async with running_worker(app, settings):
        job = await until(org, job_id, lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "failed" and job["attempts"] == 1, job
    assert job["result"]["error"]["status"] == 422 and job["result"]["error"]["type"] == "empty-content"
    # Its bytes are gone, so it cannot be retried: send the document again.
    assert_problem(await org.client.post(f"/v1/jobs/{job_id}/retry"), 409)


async def test_the_sdk_waits_for_the_job_and_raises_its_problem(
    app: Any, settings: Settings, make_org: OrgFactory
) -> None:
    org = await make_org()
    transport = httpx.ASGITransport(app=app)
    async with AsyncClient("http://engram.test", org.key, transport=transport) as sdk, running_worker(app, settings):
        done = await sdk.documents.create(content=sections(20, "delta"), title="Via SDK")
        assert done.action == "created" and done.chunks.added == 20 and done.document.title == "Via SDK"
        with pytest.raises(UnprocessableEntityError) as refused:
            await sdk.documents.upload(b"\n \n" * 1000, filename="blank.txt", file_content_type="text/plain")
        assert "empty" in refused.value.type


async def test_a_worker_stopped_mid_ingest_leaves_it_queued_and_the_next_worker_finishes_it(
    app: Any,
    settings: Settings,
    db: Database,
    slow: SlowEmbedder,
    make_org: OrgFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ingest, "EMBED_BATCH", 4)
    slow.delay = 0.3
    org = await make_org()
    r = await org.client.post("/v1/documents", json={"content": sections(30, "epsilon")})
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    try:
        async with running_worker(app, settings) as task:
            job = await until(org, job_id, lambda j: j["result"].get("stage") == "embedding")
            progress = job["result"]
            assert 0 < progress["chunks_embedded"] < progress["chunks_to_embed"] == 30
            started = time.monotonic()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            stopped_in = time.monotonic() - started
        job = await job_of(org, job_id)
        assert job["status"] == "queued" and "interrupted" in (job["error"] or ""), job
        assert stopped_in < 15  # the lane's grace, then the ingest is cut between two batches
        assert await uploads(db, org) == 1  # its bytes wait for the next worker
        assert (await org.client.get("/v1/documents")).json()["data"] == []  # nothing half-written
        slow.delay = 0.0
        async with running_worker(app, settings):
            job = await until(org, job_id, lambda j: j["status"] in ("succeeded", "failed"))
    finally:
        slow.delay = 0.0
    assert job["status"] == "succeeded" and job["result"]["chunks"]["added"] == 30, job
    assert len((await org.client.get("/v1/documents")).json()["data"]) == 1
    assert await uploads(db, org) == 0


async def test_erasing_the_user_takes_their_queued_document_with_it(db: Database, make_org: OrgFactory) -> None:
    org = await make_org()
    user = (await org.client.post("/v1/users", json={"external_id": "erin"})).json()
    r = await org.client.post("/v1/documents", json={"content": sections(20, "zeta"), "user_id": user["id"]})
    assert r.status_code == 202, r.text
    assert r.json()["job"]["user_id"] == user["id"]
    assert (await org.client.delete(f"/v1/users/{user['id']}")).status_code == 204
    assert await uploads(db, org) == 0
    assert_problem(await org.client.get(f"/v1/jobs/{r.json()['job']['id']}"), 404)


async def test_an_organization_may_queue_only_so_many_large_documents(db: Database, make_org: OrgFactory) -> None:
    busy, other = await make_org(), await make_org()
    for i in range(PER_ORG):
        r = await busy.client.post("/v1/documents", json={"content": sections(20, f"w{i}")})
        assert r.status_code == 202, r.text
    r = await busy.client.post("/v1/documents", json={"content": sections(20, "over")})
    problem = assert_problem(r, 429)
    assert problem["type"].endswith("queue-full") and int(r.headers["retry-after"]) > 0
    assert "3 large documents waiting" in str(problem["detail"])
    # Small ones still go inline, and another organization has its own room.
    assert (await busy.client.post("/v1/documents", json={"content": "small"})).status_code == 201
    assert (await other.client.post("/v1/documents", json={"content": sections(20)})).status_code == 202

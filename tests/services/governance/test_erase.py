"""Erasure against work in flight (no worker runs here: jobs run when the test says). A user's erasure
reaches the job queue: their pending jobs are cancelled, a running one loses its ids, and no other
organization's row is touched. A narrative being written from a memory when it is purged is not saved."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from engramdb.services.core import jobs
from engramdb.services.core.caller import Caller
from engramdb.services.distill import narratives
from engramdb.services.governance import erase
from engramdb.storage import queue
from engramdb.storage.database import Database
from tests.conftest import Org, OrgFactory


def _queue_rows(database_url: str, job_ids: list[uuid.UUID]) -> dict[str, dict[str, Any]]:
    """The queue's rows for these ``job`` rows, by the id their args name (or by queue id once renamed)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, status, args, lock FROM procrastinate.procrastinate_jobs WHERE args->>'job_id' = ANY(%s)",
            ([str(j) for j in job_ids],),
        ).fetchall()
    return {r[2]["job_id"]: {"id": r[0], "status": r[1], "args": r[2], "lock": r[3]} for r in rows}


async def _user_with_jobs(db: Database, org: Org) -> tuple[str, list[uuid.UUID]]:
    user = (await org.client.post("/v1/users", json={"external_id": f"q-{uuid.uuid4().hex[:6]}"})).json()
    session = (await org.client.post("/v1/sessions", json={"user_id": user["id"]})).json()
    uid, sid = uuid.UUID(user["id"]), uuid.UUID(session["id"])
    async with db.tenant(org.id) as conn:
        narrate = await jobs.enqueue(
            conn, org.id, queue.NARRATE, max_attempts=1, user_id=uid, lock=jobs.user_lock(org.id, uid)
        )
        extract = await jobs.enqueue(
            conn, org.id, queue.EXTRACT, max_attempts=1, session_id=sid, lock=jobs.session_lock(org.id, sid)
        )
    return user["id"], [narrate, extract]


async def test_pending_jobs_are_cancelled_and_a_running_one_loses_its_ids(
    db: Database, make_org: OrgFactory, database_url: str
) -> None:
    org, other = await make_org(), await make_org()
    user_id, (narrate, extract) = await _user_with_jobs(db, org)
    _, theirs = await _user_with_jobs(db, other)
    running = _queue_rows(database_url, [extract])[str(extract)]
    with psycopg.connect(database_url) as conn:  # a worker has taken the extraction
        conn.execute("SET search_path = procrastinate, public")  # procrastinate's triggers name types bare
        conn.execute("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = %s", (running["id"],))

    # Another org's ids, even known, are not this org's to forget.
    async with db.tenant(org.id) as conn:
        assert await queue.forget(conn, theirs) == 0
    assert set(_queue_rows(database_url, theirs)) == {str(j) for j in theirs}

    assert (await org.client.delete(f"/v1/users/{user_id}")).status_code == 204
    assert _queue_rows(database_url, [narrate, extract]) == {}  # gone, or no longer naming the job
    with psycopg.connect(database_url) as conn:
        status, args, lock = conn.execute(
            "SELECT status, args, lock FROM procrastinate.procrastinate_jobs WHERE id = %s", (running["id"],)
        ).fetchone() or (None, None, None)
        left = conn.execute("SELECT count(*) FROM job WHERE id = ANY(%s)", ([narrate, extract],)).fetchone()
    assert status == "doing" and lock is None  # still its worker's, without the erased ids
    assert args["org_id"] == str(org.id) and args["job_id"] != str(extract)
    assert left == (0,)
    assert set(_queue_rows(database_url, theirs)) == {str(j) for j in theirs}


async def test_a_narrative_written_while_its_memory_is_purged_is_not_saved(  # type: ignore[no-untyped-def]
    app, db: Database, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "quokka-ember-6650"
    c = org.client
    user = (await c.post("/v1/users", json={"external_id": "racer", "display_name": "Ray"})).json()
    gone = (await c.post("/v1/memories", json={"user_id": user["id"], "content": f"Ray's PIN is {secret}"})).json()
    await c.post("/v1/memories", json={"user_id": user["id"], "content": "Ray plays chess"})
    async with db.tenant(org.id) as conn:
        job_id = await jobs.enqueue(conn, org.id, queue.NARRATE, max_attempts=1, user_id=uuid.UUID(user["id"]))
    rt = app.state.runtime
    summarizer = rt.intelligence.summarizer
    write = summarizer.narrate

    async def purged_meanwhile(*args: Any, **kwargs: Any) -> Any:
        written = await write(*args, **kwargs)  # read with the memory, written while it is purged
        assert secret in written[0]
        await erase.memory(rt, Caller.operator(org.id), uuid.UUID(gone["id"]))
        return written

    monkeypatch.setattr(summarizer, "narrate", purged_meanwhile)
    assert await narratives.run(rt, org.id, job_id, attempt=1, final=True) is None
    job = (await c.get(f"/v1/jobs/{job_id}")).json()
    assert job["status"] == "succeeded" and job["result"] == {"skipped": "a memory was erased meanwhile"}
    assert (await c.get(f"/v1/users/{user['id']}/narratives")).json()["data"] == []
    # The purge queued the version that was not saved.
    queued = (await c.get("/v1/jobs", params={"kind": queue.NARRATE, "status": "queued"})).json()["data"]
    assert [j["user_id"] for j in queued] == [user["id"]]

"""`kill -9` of a worker in the middle of a job loses nothing and does nothing twice: the job is
requeued once the worker is found silent, and its retry extracts every message exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from engramdb.config import Settings
from engramdb.jobs import build_app, run_worker
from tests.conftest import Org
from tests.jobs.conftest import llm_settings
from tests.jobs.test_llm_jobs import REPLY
from tests.providers.fake_openai import FakeOpenAI, good, slow

pytestmark = pytest.mark.slow
STALLED_S = 2.0


@pytest.fixture(scope="module")
def settings(database_url: str, fake_llm: FakeOpenAI) -> Settings:
    return llm_settings(database_url, fake_llm, worker_stalled_s=STALLED_S)


def _start_worker(database_url: str, fake_llm: FakeOpenAI, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env.update(
        {
            "ENGRAM_DATABASE_URL": database_url,
            "ENGRAM_LLM_BASE_URL": fake_llm.base_url,
            "ENGRAM_LLM_MODEL": "fake-model",
            "ENGRAM_LLM_TIMEOUT_S": "300",
            "ENGRAM_WORKER_STALLED_S": str(STALLED_S),
            "ENGRAM_LOG_LEVEL": "warning",
        }
    )
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "engramdb", "worker"], env=env, stdout=out, stderr=out)


async def _job(org: Org, job_id: str) -> dict[str, object]:
    r = await org.client.get(f"/v1/jobs/{job_id}")
    job: dict[str, object] = r.json()
    return job


async def test_kill_9_mid_job_loses_nothing_and_does_nothing_twice(
    app, org: Org, settings: Settings, database_url: str, fake_llm: FakeOpenAI, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # The first extraction call hangs, so the worker is inside the job when it is killed.
    fake_llm.script(slow(120, good(REPLY)))
    fake_llm.always(good(REPLY))
    r = await org.client.post("/v1/sessions", json={})
    session = r.json()["id"]
    r = await org.client.post(
        f"/v1/sessions/{session}/messages",
        json={"messages": [{"role": "user", "name": "Ivy", "content": "I adopted a cat! Her name is Miso."}]},
    )
    job_id = r.json()["job"]["id"]

    proc = _start_worker(database_url, fake_llm, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 90
        while not ((await _job(org, job_id))["status"] == "running" and fake_llm.requests):
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "the worker never started the job"
            await asyncio.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (await _job(org, job_id))["status"] == "running"  # cut off mid-job: nothing committed

    await asyncio.sleep(STALLED_S + 1)  # the dead worker's heartbeat goes stale
    task = asyncio.create_task(run_worker(build_app(database_url, settings), app.state.runtime, name="rescuer"))
    try:
        deadline = time.monotonic() + 60
        while (job := await _job(org, job_id))["status"] != "succeeded":
            assert job["status"] != "failed", job
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert job["attempts"] == 2
    r = await org.client.get("/v1/memories", params={"session_id": session})
    assert [m["content"] for m in r.json()["data"]] == ["Ivy adopted a cat named Miso."]
    r = await org.client.get(f"/v1/sessions/{session}")
    assert r.json()["extracted_seq"] == 1
    with psycopg.connect(database_url) as conn:
        created = conn.execute(
            "SELECT count(*) FROM memory_history WHERE org_id = %s AND action = 'created'", (org.id,)
        ).fetchone()
        facts = conn.execute("SELECT count(*) FROM fact WHERE org_id = %s", (org.id,)).fetchone()
    assert created == (1,) and facts == (1,)
    audit = (await org.client.get("/v1/audit", params={"limit": 200})).json()["data"]
    written = [a["action"] for a in audit if a["request_id"] == f"job:{job_id}"]
    assert written.count("memory.created") == 1 and written.count("fact.add") == 1, written  # audited once

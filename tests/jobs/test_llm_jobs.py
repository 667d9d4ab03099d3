"""The LLM path end to end: messages → extraction job → the real client → a fake OpenAI-compatible
server on loopback with scripted replies (good, malformed then repaired, failing)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engramdb.config import Settings
from tests.conftest import Org, assert_problem
from tests.jobs.conftest import llm_settings
from tests.providers.fake_openai import FakeOpenAI, error, good, malformed

pytestmark = pytest.mark.usefixtures("worker")

REPLY: dict[str, Any] = {
    "memories": [
        {
            "content": "Ivy adopted a cat named Miso.",
            "type": "fact",
            "importance": 0.7,
            "entities": ["Ivy", "Miso"],
            "categories": ["pets"],
            "source_turns": [0],
        }
    ],
    "facts": [
        {
            "subject": "Ivy",
            "predicate": "has pet",
            "object": "Miso",
            "object_is_entity": True,
            "object_type": "object",
            "source_turns": [0],
        }
    ],
    "entities": [{"name": "Miso", "type": "object", "aliases": ["the cat"]}],
    # The summary call reads this key (the same scripted reply answers both prompts).
    "summary": "Ivy adopted a cat named Miso.",
}


@pytest.fixture(scope="module")
def settings(database_url: str, fake_llm: FakeOpenAI) -> Settings:
    return llm_settings(database_url, fake_llm, llm_timeout_s=2, llm_max_retries=1, job_max_attempts=2)


async def _add(org: Org, content: str) -> dict[str, Any]:
    r = await org.client.post("/v1/sessions", json={})
    session = r.json()["id"]
    r = await org.client.post(
        f"/v1/sessions/{session}/messages",
        params={"wait": "true"},
        json={"messages": [{"role": "user", "name": "Ivy", "content": content}]},
    )
    assert r.status_code == 201, r.text
    job: dict[str, Any] = r.json()["job"]
    return job


async def test_llm_extraction_with_a_repaired_reply(org: Org, fake_llm: FakeOpenAI) -> None:
    fake_llm.script(malformed(), good(REPLY, prompt_tokens=100, completion_tokens=40))
    fake_llm.always(good(REPLY, prompt_tokens=50, completion_tokens=20))
    job = await _add(org, "I adopted a cat! Her name is Miso.")
    assert job["status"] == "succeeded", job
    assert job["provider"] == "llm:fake-model"
    # Extraction: a malformed reply, then the repaired one; then the summary call.
    assert job["llm_calls"] == 3
    assert job["prompt_tokens"] == 10 + 100 + 50 and job["completion_tokens"] == 5 + 40 + 20
    repair = fake_llm.requests[1]["messages"][-1]["content"]
    assert "JSON" in repair
    r = await org.client.get("/v1/memories")
    (memory,) = r.json()["data"]
    assert memory["content"] == "Ivy adopted a cat named Miso." and memory["categories"] == ["pets"]
    assert memory["extractor"] == "llm:fake-model"
    r = await org.client.get("/v1/facts", params={"subject": "Ivy"})
    assert [(f["predicate"], f["object"]) for f in r.json()["data"]] == [("has_pet", "Miso")]
    r = await org.client.get("/v1/entities", params={"q": "the cat"})
    assert [e["name"] for e in r.json()["data"]] == ["Miso"]
    r = await org.client.get("/v1/usage")
    (row,) = [x for x in r.json()["data"] if x["kind"] == "engram.extract"]
    assert row["prompt_tokens"] == 160 and row["llm_calls"] == 3


async def test_a_failing_llm_fails_the_job_visibly_after_its_attempts(org: Org, fake_llm: FakeOpenAI) -> None:
    fake_llm.always(error(500, "the model crashed"))
    r = await org.client.post("/v1/sessions", json={})
    session = r.json()["id"]
    r = await org.client.post(
        f"/v1/sessions/{session}/messages",
        json={"messages": [{"role": "user", "name": "Ivy", "content": "I live in Rome."}]},
    )
    job_id = r.json()["job"]["id"]
    for _ in range(150):  # two attempts, 2 s apart, each with one transport retry
        r = await org.client.get(f"/v1/jobs/{job_id}")
        if r.json()["status"] == "failed":
            break
        await asyncio.sleep(0.1)
    job = r.json()
    assert job["status"] == "failed", job
    assert job["attempts"] == 2
    assert "LLMError" in job["error"] and "500" in job["error"]
    r = await org.client.get(f"/v1/sessions/{session}")
    assert r.json()["extracted_seq"] == 0  # nothing half done: the messages wait for a later job

    fake_llm.always(good(REPLY))
    r = await org.client.post(f"/v1/jobs/{job_id}/retry")
    assert r.status_code == 201, r.text
    retried = r.json()["id"]
    for _ in range(100):
        r = await org.client.get(f"/v1/jobs/{retried}")
        if r.json()["status"] == "succeeded":
            break
        await asyncio.sleep(0.1)
    assert r.json()["status"] == "succeeded" and r.json()["result"]["messages"] == 1
    r = await org.client.get(f"/v1/sessions/{session}")
    assert r.json()["extracted_seq"] == 1
    assert_problem(await org.client.post(f"/v1/jobs/{retried}/retry"), 409)

"""POST /v1/context: a prompt-ready block that never exceeds its budget and is never re-extracted."""

from __future__ import annotations

import math

import pytest

from tests.conftest import Org, assert_problem

pytestmark = pytest.mark.usefixtures("worker")


def _tokens(text: str) -> int:
    return math.ceil(len(text.encode()) / 3)


async def _setup(org: Org) -> tuple[str, str]:
    c = org.client
    user = (await c.post("/v1/users", json={"external_id": "jo", "display_name": "Jo"})).json()["id"]
    session = (await c.post("/v1/sessions", json={"user_id": user})).json()["id"]
    turns = [
        {"role": "user", "name": "Jo", "content": "I work as a pastry chef in Lyon."},
        {"role": "assistant", "content": "That sounds delicious! What do you bake most?"},
        {"role": "user", "name": "Jo", "content": "Mostly croissants. My brother Luc helps me on weekends."},
        {"role": "user", "name": "Jo", "content": "I'm allergic to peanuts, so I never use them."},
    ]
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": turns})
    assert r.json()["job"]["status"] == "succeeded"
    for i in range(30):
        await c.post(
            "/v1/memories", json={"user_id": user, "content": f"Jo noted filler item number {i} about the weather."}
        )
    await c.post("/v1/facts", json={"subject": "Jo", "predicate": "lives_in", "object": "Lyon", "user_id": user})
    return user, session


async def test_context_stays_inside_every_budget_and_cites_its_sources(org: Org) -> None:
    user, session = await _setup(org)
    for budget in (50, 80, 150, 300, 600, 1200, 4000):
        r = await org.client.post(
            "/v1/context", json={"session_id": session, "query": "what is Jo allergic to?", "token_budget": budget}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["tokens"] == _tokens(body["context"]) <= budget, (budget, body["tokens"])
        assert body["context"].startswith("<engram-context") and body["context"].endswith("</engram-context>")
        for citation in body["citations"]:
            assert citation["id"] in body["context"]
    r = await org.client.post("/v1/context", json={"session_id": session, "query": "allergy", "token_budget": 4000})
    big = r.json()
    assert not big["truncated"]
    sections = {c["section"] for c in big["citations"]}
    assert sections == {"summary", "facts", "memories", "messages"}
    assert "peanuts" in big["context"] and "Lyon" in big["context"]
    small = (await org.client.post("/v1/context", json={"session_id": session, "token_budget": 150})).json()
    assert small["truncated"]


async def test_context_for_a_user_without_a_session_and_bad_requests(org: Org) -> None:
    user, _ = await _setup(org)
    r = await org.client.post("/v1/context", json={"user_id": user, "query": "peanuts", "token_budget": 300})
    body = r.json()
    assert body["tokens"] <= 300
    memory_lines = [line for line in body["context"].splitlines() if "[memory:" in line]
    assert memory_lines and "peanut" in memory_lines[0]
    assert_problem(await org.client.post("/v1/context", json={"token_budget": 300}), 422)
    assert_problem(await org.client.post("/v1/context", json={"user_id": user, "token_budget": 10}), 422)
    assert_problem(await org.client.post("/v1/context", json={"user_id": user, "token_budget": 10**6}), 422)


async def test_a_context_block_written_back_is_not_extracted_again(org: Org) -> None:
    user, session = await _setup(org)
    r = await org.client.post("/v1/context", json={"session_id": session, "token_budget": 2000})
    block = r.json()["context"]
    before = len((await org.client.get("/v1/memories", params={"user_id": user, "limit": 200})).json()["data"])
    facts_before = (await org.client.get("/v1/facts", params={"user_id": user})).json()["data"]
    r = await org.client.post(
        f"/v1/sessions/{session}/messages",
        params={"wait": "true"},
        json={"messages": [{"role": "user", "name": "Jo", "content": block}]},
    )
    assert r.json()["job"]["status"] == "succeeded"
    after = len((await org.client.get("/v1/memories", params={"user_id": user, "limit": 200})).json()["data"])
    facts_after = (await org.client.get("/v1/facts", params={"user_id": user})).json()["data"]
    assert after == before and len(facts_after) == len(facts_before)

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


async def test_a_small_budget_keeps_the_newest_messages_shown_oldest_first(org: Org) -> None:
    c = org.client
    user = (await c.post("/v1/users", json={"external_id": "newest"})).json()["id"]
    session = (await c.post("/v1/sessions", json={"user_id": user})).json()["id"]
    turns = [{"role": "user", "content": f"Turn number {i} of a long chat about the garden."} for i in range(1, 9)]
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": turns})
    sent = [m["id"] for m in r.json()["data"]]
    body = {"session_id": session, "token_budget": 120, "sections": ["messages"]}
    r = await c.post("/v1/context", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    kept = [citation["id"] for citation in out["citations"]]
    assert out["truncated"] and 0 < len(kept) < len(sent)
    assert kept == sent[-len(kept) :]  # the latest turns, not the first ones
    lines = [line for line in out["context"].splitlines() if "[message:" in line]
    assert [line.rsplit("[message:", 1)[1].rstrip("]") for line in lines] == kept  # shown oldest first
    assert "Turn number 8" in lines[-1]


async def test_expired_memories_stay_out_of_the_context(org: Org) -> None:
    c = org.client
    user = (await c.post("/v1/users", json={"external_id": "expiry"})).json()["id"]
    for content, expires_at in (
        ("Pat's locker code is 4412", "2000-01-01T00:00:00Z"),
        ("Pat's favourite colour is green", None),
    ):
        body = {"user_id": user, "content": content, "importance": 0.9, "expires_at": expires_at}
        assert (await c.post("/v1/memories", json=body)).status_code == 201
    for query in (None, "locker code"):
        r = await c.post("/v1/context", json={"user_id": user, "token_budget": 1000, "query": query})
        assert r.status_code == 200, r.text
        assert "4412" not in r.json()["context"], query
        assert "green" in r.json()["context"]

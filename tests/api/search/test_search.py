"""Search through the API with the real default embedding model."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.conftest import Org, assert_problem, client_for

TURNS = [
    ("Alice", "I adopted a golden retriever puppy named Max last week", ["pets"]),
    ("Bob", "Congratulations! Dogs are great company.", []),
    ("Alice", "My sister Anna lives in Berlin and works as a nurse", ["family"]),
    ("Bob", "I just started learning to play the violin", ["hobby"]),
    ("Alice", "We are planning a trip to Japan in April", ["travel"]),
]


async def _conversation(org: Org, user: str) -> dict:  # type: ignore[type-arg]
    s = (await org.client.post("/v1/sessions", json={"external_user_id": user})).json()
    batch = [
        {
            "role": "user",
            "name": n,
            "content": c,
            "tags": tags,
            "occurred_at": f"2024-0{i + 1}-01T10:00:00Z",
            "metadata": {"turn": i},
        }
        for i, (n, c, tags) in enumerate(TURNS)
    ]
    r = await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": batch})
    assert r.status_code == 201
    return s  # type: ignore[no-any-return]


async def _search(org: Org, **body: object) -> list[dict]:  # type: ignore[type-arg]
    r = await org.client.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
async def test_each_mode_finds_the_answer(org: Org, mode: str) -> None:
    await _conversation(org, "u1")
    query = "what kind of dog did Alice get?" if mode != "keyword" else "golden retriever"
    results = await _search(org, query=query, mode=mode, external_user_id="u1", top_k=3, explain=True)
    assert results[0]["content"].startswith("I adopted a golden retriever")
    top = results[0]
    assert top["type"] == "message" and top["name"] == "Alice" and top["metadata"] == {"turn": 0}
    e = top["explanation"]
    if mode == "keyword":
        assert e["vector_rank"] is None and e["keyword_rank"] == 1
    else:
        assert e["vector_rank"] == 1 and e["vector_method"] == "exact" and 0 < e["vector_similarity"] <= 1
    assert e["final"] == pytest.approx(top["score"])


async def test_semantic_match_without_shared_words(org: Org) -> None:
    await _conversation(org, "u2")
    results = await _search(org, query="musical instrument lessons", mode="vector", external_user_id="u2", top_k=1)
    assert "violin" in results[0]["content"]


async def test_messages_and_memories_fused(org: Org) -> None:
    await _conversation(org, "u3")
    memory = (
        await org.client.post("/v1/memories", json={"external_user_id": "u3", "content": "Alice owns a dog, Max"})
    ).json()
    results = await _search(org, query="Alice's dog", external_user_id="u3", top_k=5)
    kinds = {r["type"] for r in results}
    assert kinds == {"message", "memory"}
    assert memory["id"] in [r["id"] for r in results[:2]]
    only = await _search(org, query="Alice's dog", external_user_id="u3", types=["memories"])
    assert [r["id"] for r in only] == [memory["id"]]


async def test_filters_are_applied_inside_retrieval(org: Org) -> None:
    s = await _conversation(org, "u4")
    await _conversation(org, "u4-other")
    base = {"query": "family and travel", "external_user_id": "u4", "types": ["messages"], "top_k": 10}
    assert {r["session_id"] for r in await _search(org, **base)} == {s["id"]}
    tagged = await _search(org, **base, filters={"tags_any": ["travel"]})
    assert [r["content"][:6] for r in tagged] == ["We are"]
    window = await _search(
        org, **base, filters={"occurred_after": "2024-03-01T00:00:00Z", "occurred_before": "2024-05-01T00:00:00Z"}
    )
    assert {r["metadata"]["turn"] for r in window} == {2, 3}
    meta = await _search(org, **base, filters={"metadata": {"turn": 4}})
    assert [r["metadata"]["turn"] for r in meta] == [4]
    by_session = await _search(org, query="violin", session_id=s["id"], types=["messages"])
    assert all(r["session_id"] == s["id"] for r in by_session) and by_session
    assert await _search(org, query="violin", external_user_id="nobody") == []


async def test_memory_state_and_type_filters(org: Org) -> None:
    a = await org.client.post("/v1/memories", json={"content": "prefers tea over coffee", "type": "preference"})
    b = await org.client.post("/v1/memories", json={"content": "buy tea and coffee", "type": "task"})
    a_id, b_id = a.json()["id"], b.json()["id"]
    await org.client.post(f"/v1/memories/{b_id}/state", json={"state": "archived"})
    active = await _search(org, query="tea coffee", types=["memories"])
    assert [r["id"] for r in active] == [a_id]
    archived = await _search(org, query="tea coffee", types=["memories"], filters={"state": ["archived"]})
    assert [r["id"] for r in archived] == [b_id]
    typed = await _search(
        org, query="tea", types=["memories"], filters={"memory_types": ["task"], "state": ["active", "archived"]}
    )
    assert [r["id"] for r in typed] == [b_id]


async def test_weights_move_scores(org: Org) -> None:
    low = (await org.client.post("/v1/memories", json={"content": "likes hiking", "importance": 0.1})).json()
    high = (await org.client.post("/v1/memories", json={"content": "likes hiking trips", "importance": 1.0})).json()
    plain = await _search(org, query="likes hiking", types=["memories"], explain=True)
    weighted = await _search(
        org, query="likes hiking", types=["memories"], explain=True, weights={"importance": 1.0, "recency": 0.5}
    )
    assert plain[0]["id"] == low["id"]
    assert weighted[0]["id"] == high["id"]
    assert weighted[0]["explanation"]["importance"] == 1.0 and weighted[0]["explanation"]["recency"] > 0.99


async def test_search_hits_are_counted_as_accesses(app, org: Org, database_url: str) -> None:  # type: ignore[no-untyped-def]
    await app.state.runtime.access.flush()  # hits left by earlier tests of this module
    memory = (
        await org.client.post("/v1/memories", json={"content": "the wifi password is taped to the fridge"})
    ).json()
    await _search(org, query="wifi password", types=["memories"])
    await _search(org, query="wifi password", types=["memories"])
    flushed = await app.state.runtime.access.flush()
    assert flushed == 2
    after = (await org.client.get(f"/v1/memories/{memory['id']}")).json()
    assert after["access_count"] == 2 and after["last_accessed_at"]
    assert after["version"] == memory["version"]  # an access is not a change


async def test_bound_keys_and_bad_requests(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    await _conversation(org, "owner")
    other = (await org.client.post("/v1/users", json={"external_id": "someone"})).json()
    key = (await org.client.post("/v1/keys", json={"name": "k", "user_id": other["id"]})).json()["api_key"]
    async with client_for(app, key) as bound:
        assert (await bound.post("/v1/search", json={"query": "dog"})).json()["results"] == []
        r = await bound.post("/v1/search", json={"query": "dog", "external_user_id": "owner"})
        assert_problem(r, 403)
        # An unknown external id answers the same, so a bound key cannot probe which users exist.
        assert_problem(await bound.post("/v1/search", json={"query": "dog", "external_user_id": "nobody"}), 403)
    for body in (
        {"query": ""},
        {"query": "x", "top_k": 0},
        {"query": "x", "top_k": 101},
        {"query": "x", "mode": "magic"},
        {"query": "x", "types": ["pages"]},
        {"query": "x" * 2001},
        {"query": "x", "filters": {"colour": "red"}},
    ):
        assert_problem(await org.client.post("/v1/search", json=body), 422)
    assert (await org.client.post("/v1/search", json={"query": "the of and", "mode": "keyword"})).json() == {
        "results": []
    }
    assert (await org.client.post("/v1/search", json={"query": "x", "user_id": str(uuid.uuid4())})).status_code == 200


async def test_deferred_embedding_is_keyword_searchable_at_once(org: Org) -> None:
    s = (await org.client.post("/v1/sessions", json={})).json()
    await org.client.post(
        f"/v1/sessions/{s['id']}/messages",
        json={"defer_embedding": True, "messages": [{"role": "user", "content": "the zeppelin lands at noon"}]},
    )
    kw = await _search(org, query="zeppelin", mode="keyword", session_id=s["id"])
    assert len(kw) == 1
    assert await _search(org, query="zeppelin", mode="vector", session_id=s["id"]) == []


async def test_backfill_embeds_deferred_messages(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    from engramdb.services.maintenance import backfill

    s = (await org.client.post("/v1/sessions", json={})).json()
    await org.client.post(
        f"/v1/sessions/{s['id']}/messages",
        json={"defer_embedding": True, "messages": [{"role": "user", "content": "the airship docks at dawn"}]},
    )
    rt = app.state.runtime
    assert await backfill.count_pending(rt, other_models=False) >= 1
    assert await backfill.backfill(rt) >= 1
    assert await backfill.count_pending(rt, other_models=False) == 0
    found = await _search(org, query="blimp arrival in the morning", mode="vector", session_id=s["id"])
    assert [r["content"] for r in found] == ["the airship docks at dawn"]


async def test_importance_decays_with_idle_time_by_type(org: Org, database_url: str) -> None:
    body = {"importance": 0.9, "type": "episodic"}
    fresh = (await org.client.post("/v1/memories", json={**body, "content": "ran the Chicago marathon"})).json()
    stale = (await org.client.post("/v1/memories", json={**body, "content": "ran the Boston marathon"})).json()
    fact = (
        await org.client.post("/v1/memories", json={**body, "type": "fact", "content": "marathon best is 3h05"})
    ).json()
    with psycopg.connect(database_url, autocommit=True) as conn:  # last read and confirmed 120 days ago
        conn.execute(
            "UPDATE memory SET created_at = now() - interval '120 days', updated_at = now() - interval '120 days', "
            "last_accessed_at = now() - interval '120 days' WHERE id = ANY(%s)",
            ([uuid.UUID(stale["id"]), uuid.UUID(fact["id"])],),
        )
    results = await _search(
        org, query="ran the marathon", types=["memories"], explain=True, weights={"importance": 1.0}
    )
    by_id = {r["id"]: r["explanation"] for r in results}
    assert by_id[fresh["id"]]["decay"] > 0.99
    assert by_id[stale["id"]]["decay"] == pytest.approx(2 ** (-120 / 30), rel=0.01)  # episodic: 30-day half-life
    assert by_id[stale["id"]]["importance"] == pytest.approx(0.9 * by_id[stale["id"]]["decay"])
    assert by_id[fact["id"]]["decay"] == 1.0  # facts do not fade
    ranked = [r["id"] for r in results]
    assert ranked.index(fresh["id"]) < ranked.index(stale["id"])

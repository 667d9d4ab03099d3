"""Two conversation-aware signals of message search: the turn after a question among the hits (the
answer usually follows it), and the time a query names, resolved against ``occurred_at``."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.conftest import Org

BOOK = [
    ("Alice", "I finished reading Becoming Nicole over the weekend."),
    ("Bob", "What did you take away from the book?"),
    ("Alice", "It taught me to accept myself and that hard times pass."),
    ("Bob", "Lovely. I went hiking on Saturday with my sister."),
    ("Alice", "Nice, the weather was perfect for it."),
]


async def _session(org: Org, user: str, turns: list[tuple[str, str]], when: str = "2024-03-02T10:00:00Z") -> str:
    s = (await org.client.post("/v1/sessions", json={"external_user_id": user})).json()
    batch = [
        {"role": "user", "name": n, "content": c, "occurred_at": when, "metadata": {"turn": i}}
        for i, (n, c) in enumerate(turns)
    ]
    r = await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": batch, "extract": False})
    assert r.status_code == 201, r.text
    return s["id"]  # type: ignore[no-any-return]


async def _search(org: Org, **body: Any) -> list[dict[str, Any]]:
    r = await org.client.post("/v1/search", json={"types": ["messages"], "explain": True, **body})
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


async def test_the_answer_follows_a_question_that_matches(org: Org) -> None:
    await _session(org, "reader", BOOK)
    # Keyword mode: only the question shares words with the query, so only the reply signal finds the answer.
    query = "What did she take away from the book?"
    without = await _search(org, query=query, mode="keyword", external_user_id="reader", weights={"reply": 0})
    assert [r["metadata"]["turn"] for r in without] == [1]
    found = await _search(org, query=query, mode="keyword", external_user_id="reader")
    assert [r["metadata"]["turn"] for r in found] == [1, 2]
    question, answer = found
    # 0.4 × the question's score before the length signal (added last, to every turn found)
    before_length = question["score"] - question["explanation"]["length"]
    assert answer["explanation"]["reply"] == pytest.approx(before_length * 0.4)
    assert answer["explanation"]["rrf"] == 0
    assert answer["score"] == pytest.approx(answer["explanation"]["reply"] + answer["explanation"]["length"])
    assert question["explanation"]["reply"] is None


async def test_only_questions_pull_their_reply_and_filters_still_hold(org: Org) -> None:
    await _session(org, "hiker", BOOK)
    # "hiking" matches a statement: the turn after it is not pulled in.
    found = await _search(org, query="hiking sister", mode="keyword", external_user_id="hiker")
    assert [r["metadata"]["turn"] for r in found] == [3]
    # The reply is retrieved under the request's filters like any hit: here it does not pass them.
    filtered = await _search(
        org,
        query="take away from the book",
        mode="keyword",
        external_user_id="hiker",
        filters={"metadata": {"turn": 1}},
    )
    assert [r["metadata"]["turn"] for r in filtered] == [1]


async def test_a_time_in_the_query_lifts_what_happened_then(org: Org) -> None:
    for when in ("2024-01-05T09:00:00Z", "2024-03-02T18:00:00Z", "2024-06-01T12:00:00Z"):
        await _session(org, "cook", [("Alice", "I cooked a mushroom risotto for dinner.")], when)
    query = "What was cooked on March 2, 2024?"
    weights = {"session": 0}  # one session per turn here: keep the comparison to the time factor alone
    found = await _search(org, query=query, mode="keyword", external_user_id="cook", weights=weights)
    assert [r["occurred_at"][:10] for r in found][0] == "2024-03-02"
    assert [r["explanation"]["time_match"] for r in found] == [True, False, False]
    # The turn of that day gains 0.6 (weights.time) of a first place, 1 / (rrf_k + 1); the others nothing.
    assert [r["score"] - r["explanation"]["rrf"] for r in found] == pytest.approx([0.6 / 6, 0.0, 0.0])
    plain = await _search(org, query=query, mode="keyword", external_user_id="cook", weights={**weights, "time": 0})
    assert {r["explanation"]["time_match"] for r in plain} == {None}
    assert [r["score"] for r in plain] == [r["explanation"]["rrf"] for r in plain]


async def test_memories_bring_the_turns_they_were_drawn_from(org: Org) -> None:
    s = (await org.client.post("/v1/sessions", json={"external_user_id": "potter"})).json()
    turns = [
        {"role": "user", "name": "Melanie", "content": "I just signed up for a pottery class yesterday!"},
        {"role": "user", "name": "Caroline", "content": "Nice, enjoy the weekend."},
    ]
    r = await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": turns, "extract": False})
    pottery = r.json()["data"][0]
    memory = {"external_user_id": "potter", "content": "Melanie takes ceramics lessons"}
    r = await org.client.post("/v1/memories", json={**memory, "source_message_ids": [pottery["id"]]})
    assert r.status_code == 201, r.text
    # Keyword mode: the query shares no word with the turn, only with the memory drawn from it.
    query, who = "ceramics lessons", {"external_user_id": "potter", "mode": "keyword"}
    assert await _search(org, query=query, **who, weights={"memory": 0}) == []
    (found,) = await _search(org, query=query, **who)
    assert found["id"] == pottery["id"] and found["type"] == "message"
    assert found["explanation"]["memory_rank"] == 1
    assert found["explanation"]["rrf"] == pytest.approx(1.0 / (5 + 1))  # weights.memory 1.0, rank 1, rrf_k 5
    # The turn is retrieved under the request's filters like any hit.
    assert await _search(org, query=query, **who, filters={"role": ["assistant"]}) == []
    # Hybrid: the memory retrievers' vector side brings the same turn.
    hybrid = await _search(org, query=query, external_user_id="potter")
    assert hybrid[0]["id"] == pottery["id"] and hybrid[0]["explanation"]["memory_rank"] == 1


async def test_each_question_pulls_its_own_reply_across_sessions_in_every_mode(org: Org) -> None:
    trip = [
        ("Bob", "Where did you go for the holidays?"),
        ("Alice", "We drove up to the lakes and rented a cabin."),
        ("Bob", "That sounds restful."),
    ]
    await _session(org, "twice", BOOK)
    await _session(org, "twice", trip, "2024-04-10T10:00:00Z")
    replies = {
        "What did you take away from the book?": "It taught me to accept myself and that hard times pass.",
        "Where did you go for the holidays?": "We drove up to the lakes and rented a cabin.",
    }
    query = "take away from the book, and where did you go for the holidays?"
    for mode in ("keyword", "vector", "hybrid"):
        found = await _search(org, query=query, mode=mode, external_user_id="twice", top_k=10)
        by_content = {r["content"]: r for r in found}
        for question, answer in replies.items():
            assert question in by_content and answer in by_content, (mode, list(by_content))
            gain = by_content[answer]["explanation"]["reply"]
            asked = by_content[question]
            before_length = asked["score"] - asked["explanation"]["length"]  # the length signal comes last
            assert gain == pytest.approx(0.4 * before_length, rel=1e-6), mode
        # No other turn gains: the statements among the hits ask nothing.
        others = [r for r in found if r["content"] not in replies.values()]
        assert {r["explanation"]["reply"] for r in others} == {None}, mode
    # Without ``explain`` no explanation is built; the results are the same.
    r = await org.client.post(
        "/v1/search", json={"types": ["messages"], "query": query, "external_user_id": "twice", "top_k": 10}
    )
    assert r.status_code == 200, r.text
    plain = r.json()["results"]
    assert {result["explanation"] for result in plain} == {None}
    assert [result["id"] for result in plain] == [result["id"] for result in found]


async def test_a_turn_that_says_more_outranks_a_short_one_the_lists_put_first(org: Org) -> None:
    turns = [("Alice", "The book!"), ("Bob", "I read the book on the train every morning this week and loved it.")]
    await _session(org, "reader", turns)
    plain = await _search(org, query="book", mode="keyword", external_user_id="reader", weights={"length": 0})
    assert [r["metadata"]["turn"] for r in plain] == [0, 1]  # BM25 favours the short turn
    assert {r["explanation"]["length"] for r in plain} == {None}
    found = await _search(org, query="book", mode="keyword", external_user_id="reader")
    assert [r["metadata"]["turn"] for r in found] == [1, 0]
    # 0.2 (weights.length) of a first place × ln((1 + words) / (1 + the median's words)): 2 and 14 words
    first = 1 / (5 + 1)
    long, short = found
    assert long["explanation"]["length"] == pytest.approx(0.2 * first * math.log(15 / 9))
    assert short["explanation"]["length"] == pytest.approx(0.2 * first * math.log(3 / 9))
    assert long["score"] - plain[1]["score"] == pytest.approx(long["explanation"]["length"])


async def test_the_quickstart_finds_where_alice_lives_first(org: Org) -> None:
    """The README's conversation, with the memories offline extraction draws from it: every turn of a short
    session is among the hits, the assistant's question included, and the reply to that question must not
    gain from a question that the lists rank below the reply itself."""
    s = (await org.client.post("/v1/sessions", json={"external_user_id": "alice", "title": "Moving"})).json()
    turns = [
        {"role": "user", "content": "I moved to Lisbon last month", "occurred_at": "2026-10-02T09:30:00Z"},
        {"role": "assistant", "content": "How are you finding it?"},
        {"role": "user", "content": "Love it, though I miss Porto", "tags": ["feelings"]},
    ]
    r = await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": turns, "extract": False})
    assert r.status_code == 201, r.text
    moved, _, porto_turn = (m["id"] for m in r.json()["data"])
    memories = [
        ("Lives in Lisbon since October 2026", []),
        ("The user moved to Lisbon in September 2026.", [moved]),
        ("The user loves it, though the user misses Porto.", [porto_turn]),
    ]
    for content, sources in memories:
        body = {"external_user_id": "alice", "content": content, "source_message_ids": sources}
        assert (await org.client.post("/v1/memories", json=body)).status_code == 201
    for query in ("which city does alice live in?", "where does alice live?"):
        r = await org.client.post("/v1/search", json={"query": query, "external_user_id": "alice", "explain": True})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert "Lisbon" in results[0]["content"], [x["content"] for x in results]
        porto = next(x for x in results if x["id"] == porto_turn)
        question = next(x for x in results if x["content"] == "How are you finding it?")
        assert porto["explanation"]["rrf"] >= question["explanation"]["rrf"]  # so: no reply gain
        assert porto["explanation"]["reply"] is None

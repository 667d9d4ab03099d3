"""Facts and entities in /v1/search, fused with messages and memories, and the graph boost."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import event

from engramdb.storage.database import Database
from tests.conftest import Org, assert_problem, client_for


async def _fact(client: httpx.AsyncClient, **body: object) -> dict:  # type: ignore[type-arg]
    r = await client.post("/v1/facts", json=body)
    assert r.status_code == 201, r.text
    return r.json()["fact"]  # type: ignore[no-any-return]


async def _user(client: httpx.AsyncClient, external_id: str) -> str:
    r = await client.post("/v1/users", json={"external_id": external_id})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _search(client: httpx.AsyncClient, **body: object) -> list[dict]:  # type: ignore[type-arg]
    r = await client.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


async def _alice(org: Org) -> str:
    """Alice moved from Lisbon to Porto; she likes hiking and works at Acme."""
    user = await _user(org.client, "alice")
    home = {"subject": "Alice", "predicate": "lives_in", "single_valued": True, "user_id": user}
    city = {"object_is_entity": True, "object_type": "place"}
    await _fact(org.client, **home, **city, object="Lisbon", valid_from="2024-01-01T00:00:00Z")
    await _fact(org.client, **home, **city, object="Porto", valid_from="2025-06-01T00:00:00Z")
    await _fact(org.client, subject="Alice", predicate="likes", object="hiking in the mountains", user_id=user)
    await _fact(org.client, subject="Alice", predicate="works at", object="Acme", object_is_entity=True, user_id=user)
    return user


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
async def test_facts_are_found_by_meaning_and_by_keyword_and_only_current_ones(org: Org, mode: str) -> None:
    user = await _alice(org)
    query = "Porto" if mode == "keyword" else "which city does Alice call home?"
    results = await _search(org.client, query=query, mode=mode, types=["facts"], user_id=user, explain=True)
    top = results[0]
    assert top["type"] == "fact" and top["content"] == "Alice lives in Porto"
    assert (top["subject"], top["predicate"], top["object"]) == ("Alice", "lives_in", "Porto")
    assert top["valid_from"].startswith("2025-06-01") and top["valid_until"] is None
    assert top["subject_id"] and top["object_id"] and top["user_id"] == user and top["tags"] == []
    if mode != "keyword":
        assert top["explanation"]["vector_method"] == "exact" and top["explanation"]["vector_rank"] == 1
    # Lisbon was true once: its versions (the superseded original, the closed copy) are not current.
    everything = await _search(org.client, query="Alice lives in Lisbon", mode=mode, types=["facts"], top_k=50)
    assert "Lisbon" not in {r["object"] for r in everything}


async def test_facts_not_valid_now_are_left_out(org: Org) -> None:
    await _fact(org.client, subject="Dan", predicate="studies", object="law", valid_until="2020-01-01T00:00:00Z")
    await _fact(org.client, subject="Dan", predicate="studies", object="medicine", valid_from="2999-01-01T00:00:00Z")
    await _fact(org.client, subject="Dan", predicate="studies", object="music")
    found = await _search(org.client, query="what does Dan study", types=["facts"])
    assert [r["object"] for r in found] == ["music"]


async def test_entities_are_found_by_name_alias_and_meaning(org: Org) -> None:
    await _alice(org)
    await _fact(org.client, subject="Golden Gate Bridge", subject_type="place", predicate="spans", object="the strait")
    porto = (await org.client.get("/v1/entities", params={"q": "porto"})).json()["data"][0]
    r = await org.client.patch(f"/v1/entities/{porto['id']}", json={"aliases": ["Oporto"]})
    assert r.status_code == 200, r.text

    by_alias = await _search(org.client, query="Oporto", mode="keyword", types=["entities"])
    assert [(e["id"], e["content"], e["entity_type"]) for e in by_alias] == [(porto["id"], "Porto (Oporto)", "place")]
    assert by_alias[0]["name"] == "Porto" and by_alias[0]["aliases"] == ["Oporto"]
    by_meaning = await _search(org.client, query="a famous suspension bridge", mode="vector", types=["entities"])
    assert by_meaning[0]["content"] == "Golden Gate Bridge" and by_meaning[0]["type"] == "entity"


async def test_one_call_mixes_messages_memories_facts_and_entities(org: Org) -> None:
    user = await _alice(org)
    s = (await org.client.post("/v1/sessions", json={"user_id": user})).json()
    turn = {"role": "user", "name": "Alice", "content": "I finally unpacked the last boxes in my Porto flat"}
    assert (await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": [turn]})).status_code == 201
    memory = {"user_id": user, "content": "Alice moved to Porto last summer"}
    assert (await org.client.post("/v1/memories", json=memory)).status_code == 201

    every = ["messages", "memories", "facts", "entities"]
    results = await _search(org.client, query="Alice in Porto", types=every, user_id=user, top_k=20, explain=True)
    assert {r["type"] for r in results} == {"message", "memory", "fact", "entity"}
    for r in results:
        assert r["explanation"]["final"] == pytest.approx(r["score"])
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    # The default is still messages and memories only.
    assert {r["type"] for r in await _search(org.client, query="Alice in Porto", user_id=user)} == {"message", "memory"}


async def _robert(org: Org, user: str) -> str:
    """Robert, known as Bob: the alias keeps his name out of the statements' words."""
    robert = {"subject": "Robert", "subject_type": "person", "user_id": user}
    fact = await _fact(org.client, **robert, predicate="likes", object="tea")
    r = await org.client.patch(f"/v1/entities/{fact['subject_id']}", json={"aliases": ["Bob"]})
    assert r.status_code == 200, r.text
    return str(fact["subject_id"])


async def test_graph_boost_lifts_facts_about_the_entity_the_query_names(org: Org) -> None:
    user = await _user(org.client, "jazz")
    # Equal keyword scores: without the boost the earlier fact (Carol's) wins the tie.
    carol = await _fact(org.client, subject="Carol", predicate="likes", object="jazz", user_id=user)
    await _robert(org, user)
    robert = await _fact(org.client, subject="Robert", predicate="likes", object="jazz", user_id=user)
    body = {"query": "does Bob's music taste include jazz", "mode": "keyword", "types": ["facts"], "explain": True}

    plain = await _search(org.client, **body, user_id=user, weights={"graph": 0})
    assert [r["id"] for r in plain] == [carol["id"], robert["id"]]
    assert plain[0]["explanation"]["graph_match"] is None
    boosted = await _search(org.client, **body, user_id=user)
    assert [r["id"] for r in boosted] == [robert["id"], carol["id"]]
    top, other = (r["explanation"] for r in boosted)
    assert top["graph_match"] is True and other["graph_match"] is False
    assert top["final"] == pytest.approx(1.3 * top["rrf"]) and other["final"] == pytest.approx(other["rrf"])


async def test_graph_boost_lifts_memories_linked_to_the_named_entity(org: Org, database_url: str) -> None:
    user = await _user(org.client, "records")
    robert_id = await _robert(org, user)
    ids = []
    for who in ("Carol", "Robert"):
        body = {"user_id": user, "content": f"{who} collects old vinyl records"}
        ids.append((await org.client.post("/v1/memories", json=body)).json()["id"])
    carol_memory, robert_memory = ids
    with psycopg.connect(database_url, autocommit=True) as conn:  # what extraction records for a memory
        conn.execute(
            "INSERT INTO memory_entity (org_id, memory_id, entity_id) VALUES (%s, %s, %s)",
            (org.id, robert_memory, robert_id),
        )
    body = {"query": "Bob vinyl records", "mode": "keyword", "types": ["memories"], "user_id": user, "explain": True}
    plain = await _search(org.client, **body, weights={"graph": 0})
    assert [r["id"] for r in plain] == [carol_memory, robert_memory]
    boosted = await _search(org.client, **body)
    assert [r["id"] for r in boosted] == [robert_memory, carol_memory]
    assert [r["explanation"]["graph_match"] for r in boosted] == [True, False]
    # Naming nobody, nothing is lifted.
    unnamed = await _search(org.client, **{**body, "query": "vinyl records"})
    assert [r["explanation"]["graph_match"] for r in unnamed] == [False, False]


@contextmanager
def _graph_queries(db: Database) -> Iterator[list[str]]:
    """The statements that touch the entity graph while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "entity" in statement:
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)


async def test_the_messages_and_memories_path_pays_at_most_one_graph_lookup(org: Org, db: Database) -> None:
    s = (await org.client.post("/v1/sessions", json={})).json()
    turn = {"role": "user", "content": "Bob bought a kayak"}
    await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": [turn]})
    await org.client.post("/v1/memories", json={"content": "Bob paddles on Sundays"})
    with _graph_queries(db) as seen:
        await _search(org.client, query="Bob kayak", types=["messages"])  # messages are not linked to entities
        await _search(org.client, query="Bob kayak", weights={"graph": 0})
    assert seen == []
    with _graph_queries(db) as seen:
        results = await _search(org.client, query="Bob kayak")
    assert {r["type"] for r in results} == {"message", "memory"} and len(seen) == 1


async def test_user_bound_key_sees_only_its_users_facts_and_entities(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    ann = await _user(org.client, "ann")
    ben = await _user(org.client, "ben")
    await _fact(org.client, subject="Ann", predicate="drinks", object="green tea", user_id=ann)
    await _fact(org.client, subject="Ben", predicate="drinks", object="black tea", user_id=ben)
    await _fact(org.client, subject="Teahouse Rules", predicate="says", object="no phones at the tea table")
    key = (await org.client.post("/v1/keys", json={"name": "ann", "user_id": ann})).json()["api_key"]
    every = ["facts", "entities"]
    async with client_for(app, key) as bound:
        seen = await _search(bound, query="who drinks tea", types=every, top_k=50)
        assert {r["content"] for r in seen if r["type"] == "fact"} == {"Ann drinks green tea"}
        # Entities the org shares are seen through the user's own facts only (fails closed, like facts).
        assert {r["content"] for r in seen if r["type"] == "entity"} == {"Ann"}
        assert "Ben" not in {r.get("subject") for r in seen}
        assert_problem(await bound.post("/v1/search", json={"query": "tea", "types": every, "user_id": ben}), 403)
    # An unbound key scoped to a user sees that user's facts, and their entities plus the org's shared ones.
    scoped = await _search(org.client, query="who drinks tea", types=every, user_id=ben, top_k=50)
    assert {r["content"] for r in scoped if r["type"] == "fact"} == {"Ben drinks black tea"}
    assert {r["content"] for r in scoped if r["type"] == "entity"} == {"Ben", "Teahouse Rules"}


async def test_filters_apply_to_facts(org: Org) -> None:
    await _fact(org.client, subject="Eve", predicate="owns", object="a red bike", metadata={"source": "crm"})
    await _fact(org.client, subject="Eve", predicate="owns", object="a blue bike")
    crm = await _search(org.client, query="bike", types=["facts"], filters={"metadata": {"source": "crm"}})
    assert [r["object"] for r in crm] == ["a red bike"] and crm[0]["metadata"] == {"source": "crm"}
    # Facts carry no tags: a tag filter leaves them out.
    assert await _search(org.client, query="bike", types=["facts"], filters={"tags_any": ["x"]}) == []
    later = await _search(org.client, query="bike", types=["facts"], filters={"created_after": "2999-01-01T00:00:00Z"})
    assert later == []


async def test_bad_types_are_rejected(org: Org) -> None:
    for types in (["facts", "relationships"], [], ["facts"] * 8, "facts"):
        assert_problem(await org.client.post("/v1/search", json={"query": "x", "types": types}), 422)
    assert_problem(await org.client.post("/v1/search", json={"query": "x", "weights": {"graph": 2}}), 422)

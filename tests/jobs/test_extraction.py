"""Messages written through the API become memories, facts, entities and a summary in the background,
with no LLM configured (the offline extractor)."""

from __future__ import annotations

import pytest

from tests.conftest import Org

pytestmark = pytest.mark.usefixtures("worker")

TURNS = [
    {"role": "user", "name": "Caroline", "content": "Hey Mel! Good to see you! How have you been?"},
    {"role": "user", "name": "Melanie", "content": "I'm swamped with the kids & work. What's up with you?"},
    {
        "role": "user",
        "name": "Caroline",
        "content": "I went to a LGBTQ support group yesterday and it was so powerful.",
    },
    {"role": "user", "name": "Melanie", "content": "My sister Anna lives in Boston. I love painting landscapes."},
    {"role": "user", "name": "Caroline", "content": "I moved to Lisbon last month."},
]


async def _session(org: Org) -> str:
    r = await org.client.post("/v1/users", json={"external_id": f"u-{org.id.hex[:6]}"})
    user = r.json()["id"]
    r = await org.client.post("/v1/sessions", json={"user_id": user})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_messages_become_memories_facts_and_entities(org: Org) -> None:
    c = org.client
    session = await _session(org)
    turns = [{**t, "occurred_at": "2023-05-08T13:56:00Z"} for t in TURNS]
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": turns})
    assert r.status_code == 201, r.text
    job = r.json()["job"]
    assert job["status"] == "succeeded", job
    assert job["provider"] == "offline"
    assert job["result"]["messages"] == 5
    assert job["result"].get("memories_add", 0) >= 2
    message_ids = {m["id"] for m in r.json()["data"]}

    r = await c.get(f"/v1/jobs/{job['id']}")
    assert r.status_code == 200 and r.json()["status"] == "succeeded"

    r = await c.get("/v1/memories", params={"session_id": session})
    memories = r.json()["data"]
    contents = " | ".join(m["content"] for m in memories)
    assert "Caroline went to a LGBTQ support group" in contents
    assert all(m["source"] == "extraction" and m["extractor"] == "offline" for m in memories)
    assert all(set(m["source_message_ids"]) <= message_ids and m["source_message_ids"] for m in memories)
    assert not any("Good to see you" in m["content"] for m in memories)  # greetings are not memories

    r = await c.get("/v1/facts", params={"subject": "Melanie"})
    triples = {(f["predicate"], f["object"]) for f in r.json()["data"]}
    assert ("sister", "Anna") in triples
    r = await c.get("/v1/facts", params={"subject": "Caroline", "predicate": "lives_in"})
    (lives,) = r.json()["data"]
    assert lives["object"] == "Lisbon" and lives["valid_from"].startswith("2023-04")

    r = await c.get("/v1/entities", params={"q": "anna"})
    (anna,) = r.json()["data"]
    assert anna["type"] == "person"

    r = await c.get(f"/v1/sessions/{session}")
    assert r.json()["summary"] and r.json()["extracted_seq"] == 5


async def test_every_write_of_an_extraction_is_audited_once_as_the_jobs(org: Org) -> None:
    c = org.client
    session = await _session(org)
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": TURNS})
    job = r.json()["job"]
    assert job["status"] == "succeeded", job
    audit = (await c.get("/v1/audit", params={"limit": 200})).json()["data"]
    mine = [a for a in audit if a["request_id"] == f"job:{job['id']}"]
    assert mine and all(a["actor"] == "extractor:offline" and a["key_id"] is None for a in mine)

    def audited(prefix: str) -> list[str]:
        return sorted(a["entity_id"] for a in mine if a["action"].startswith(prefix))

    memories = (await c.get("/v1/memories", params={"session_id": session})).json()["data"]
    assert len(memories) == job["result"]["memories_add"] >= 2
    assert audited("memory.created") == sorted(m["id"] for m in memories)  # one row per memory
    facts = (await c.get("/v1/facts", params={"include_history": "true"})).json()["data"]
    assert len(facts) == job["result"]["facts_add"] >= 2
    assert audited("fact.add") == audited("fact.") == sorted(f["id"] for f in facts)
    statements = {a["entity_id"]: a["details"]["statement"] for a in mine if a["action"] == "fact.add"}
    assert statements == {f["id"]: f["statement"] for f in facts}
    entities = (await c.get("/v1/entities")).json()["data"]
    assert audited("entity.created") == sorted(e["id"] for e in entities)
    assert {a["action"] for a in mine} == {"memory.created", "fact.add", "entity.created"}


async def test_a_contradiction_in_conversation_closes_the_old_fact(org: Org) -> None:
    c = org.client
    session = await _session(org)
    first = {"role": "user", "name": "Dan", "content": "I live in Berlin.", "occurred_at": "2022-03-01T10:00:00Z"}
    later = {"role": "user", "name": "Dan", "content": "I moved to Munich.", "occurred_at": "2024-09-01T10:00:00Z"}
    for turn in (first, later):
        r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": [turn]})
        assert r.json()["job"]["status"] == "succeeded"
    r = await c.get("/v1/facts", params={"subject": "Dan", "predicate": "lives_in", "valid_at": "2023-01-01T00:00:00Z"})
    assert [f["object"] for f in r.json()["data"]] == ["Berlin"]
    r = await c.get("/v1/facts", params={"subject": "Dan", "predicate": "lives_in", "valid_at": "2025-01-01T00:00:00Z"})
    assert [f["object"] for f in r.json()["data"]] == ["Munich"]
    (munich,) = r.json()["data"]
    (audited,) = (await c.get("/v1/audit", params={"action": "fact.invalidate"})).json()["data"]
    assert audited["entity_id"] == munich["id"] and audited["actor"] == "extractor:offline"
    r = await c.get("/v1/facts", params={"subject": "Dan", "predicate": "lives_in", "include_history": "true"})
    replaced = [f["replaces_id"] for f in r.json()["data"] if f["replaces_id"]]  # Berlin's first version
    assert audited["details"] == {"statement": "Dan lives in Munich", "invalidated": replaced}


async def test_a_repeated_statement_is_not_stored_twice(org: Org) -> None:
    c = org.client
    session = await _session(org)
    turn = {"role": "user", "name": "Eli", "content": "I love playing the violin in the evenings."}
    ids = []
    for _ in range(2):
        r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": [turn]})
        ids.append(r.json()["data"][0]["id"])
    r = await c.get("/v1/memories", params={"session_id": session})
    (memory,) = [m for m in r.json()["data"] if "violin" in m["content"]]
    assert set(memory["source_message_ids"]) == set(ids)  # the repeat added provenance (NOOP)
    r = await c.get(f"/v1/memories/{memory['id']}/history")
    assert [h["action"] for h in r.json()["data"]].count("reinforced") == 1
    r = await c.get("/v1/audit", params={"entity_id": memory["id"]})
    assert [a["action"] for a in r.json()["data"]] == ["memory.reinforced", "memory.created"]


async def test_injected_context_is_never_extracted_and_extract_false_skips(org: Org) -> None:
    c = org.client
    session = await _session(org)
    block = '<engram-context id="x">\n## Known facts\n- Fay lives in Oslo [fact:1]\n</engram-context>'
    turn = {"role": "user", "name": "Fay", "content": f"{block}\nThanks!"}
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": [turn]})
    assert r.json()["job"]["status"] == "succeeded"
    r = await c.get("/v1/facts", params={"subject": "Fay"})
    assert r.json()["data"] == []
    later = {"role": "user", "name": "Fay", "content": "I work at Initech."}
    r = await c.post(f"/v1/sessions/{session}/messages", json={"messages": [later], "extract": False})
    assert r.json()["job"] is None
    never = {"role": "user", "name": "Fay", "content": "I live in Bergen.", "metadata": {"engram_extract": False}}
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": [never]})
    assert r.json()["job"]["status"] == "succeeded"
    r = await c.get("/v1/facts", params={"subject": "Fay"})
    assert {f["predicate"] for f in r.json()["data"]} == {"works_at"}  # read by the next job; Bergen never


async def test_batches_are_extracted_in_order_each_once(org: Org) -> None:
    c = org.client
    session = await _session(org)
    jobs = []
    for i in range(4):
        turn = {"role": "user", "name": "Gus", "content": f"I visited museum number {i} in Paris today."}
        r = await c.post(f"/v1/sessions/{session}/messages", json={"messages": [turn]})
        jobs.append(r.json()["job"]["id"])
    r = await c.post(
        f"/v1/sessions/{session}/messages",
        params={"wait": "true"},
        json={"messages": [{"role": "user", "name": "Gus", "content": "I adopted a dog named Rex."}]},
    )
    assert r.json()["job"]["status"] == "succeeded"
    for job_id in jobs:
        r = await c.get(f"/v1/jobs/{job_id}")
        assert r.json()["status"] == "succeeded"
    r = await c.get("/v1/jobs", params={"session_id": session})
    handled = sum(j["result"].get("messages", 0) for j in r.json()["data"])
    assert handled == 5  # every message extracted exactly once, whichever job took it
    r = await c.get(f"/v1/sessions/{session}")
    assert r.json()["extracted_seq"] == 5


async def test_narrative_and_usage(org: Org) -> None:
    c = org.client
    session = await _session(org)
    r = await c.get(f"/v1/sessions/{session}")
    user = r.json()["user_id"]
    turn = {"role": "user", "name": "Hana", "content": "I work as a nurse. My brother Ken lives in Osaka."}
    await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": [turn]})
    r = await c.get(f"/v1/users/{user}/narrative")
    assert r.status_code == 404
    r = await c.post(f"/v1/users/{user}/narrative", params={"wait": "true"})
    assert r.status_code == 202 and r.json()["status"] == "succeeded", r.text
    r = await c.get(f"/v1/users/{user}/narrative")
    assert r.status_code == 200 and "nurse" in r.json()["content"] and r.json()["version"] == 1
    r = await c.get("/v1/usage")
    kinds = {row["kind"] for row in r.json()["data"]}
    assert {"engram.extract", "engram.narrate"} <= kinds


async def test_an_unnamed_users_turns_are_attributed_to_the_sessions_user(org: Org) -> None:
    c = org.client
    r = await c.post("/v1/sessions", json={"external_user_id": "kim"})
    session = r.json()["id"]
    turns = [
        {"role": "user", "content": "I live in Denver and I work at Acme Corp."},
        {"role": "assistant", "content": "I love Denver! I work as your assistant."},
    ]
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": turns})
    assert r.json()["job"]["status"] == "succeeded"
    # "kim" is an external id, not a display name: the user's facts are about "the user", never about a raw id
    # written as if it were a name.
    r = await c.get("/v1/facts", params={"subject": "user"})
    assert ("lives_in", "Denver") in {(f["predicate"], f["object"]) for f in r.json()["data"]}
    assert (await c.get("/v1/facts", params={"subject": "kim"})).json()["data"] == []
    r = await c.get("/v1/memories", params={"session_id": session})
    contents = [m["content"] for m in r.json()["data"]]
    assert contents and all("assistant" not in text for text in contents)  # the assistant's "I" is not a person


async def test_a_fact_that_ended_before_it_was_said_is_kept_with_its_end(org: Org) -> None:
    c = org.client
    session = await _session(org)
    turn = {
        "role": "user",
        "name": "Jon",
        "content": "Lost my job as a banker yesterday.",
        "occurred_at": "2023-01-20T16:04:00Z",
    }
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": [turn]})
    job = r.json()["job"]
    assert job["status"] == "succeeded", job
    assert "rejected" not in job["result"]
    r = await c.get("/v1/facts", params={"subject": "Jon"})
    ended = [f for f in r.json()["data"] if f["valid_until"]]
    assert ended and ended[0]["valid_until"].startswith("2023-01-19") and ended[0]["valid_from"] is None


async def test_each_message_is_extracted_for_its_own_user(org: Org) -> None:
    c = org.client
    alice = (await c.post("/v1/users", json={"external_id": "alice-m", "display_name": "Alice"})).json()
    bob = (await c.post("/v1/users", json={"external_id": "bob-m", "display_name": "Bob"})).json()
    session = (await c.post("/v1/sessions", json={"user_id": alice["id"]})).json()["id"]
    turns = [
        {"role": "user", "content": "I moved to Lisbon last month.", "user_id": bob["id"]},
        {"role": "user", "content": "I work at Initech."},
    ]
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": turns})
    assert r.json()["job"]["status"] == "succeeded"
    r = await c.get("/v1/facts", params={"user_id": bob["id"]})
    assert {(f["subject"], f["predicate"], f["object"]) for f in r.json()["data"]} == {("Bob", "lives_in", "Lisbon")}
    r = await c.get("/v1/facts", params={"user_id": alice["id"]})
    assert {(f["subject"], f["predicate"]) for f in r.json()["data"]} == {("Alice", "works_at")}
    r = await c.get("/v1/memories", params={"user_id": alice["id"], "session_id": session})
    assert all("Lisbon" not in m["content"] for m in r.json()["data"])


async def test_one_teams_conversation_never_rewrites_another_teams_memory(org: Org) -> None:
    c = org.client
    contents = {}
    for team_name, job in (("t2", "nurse"), ("t1", "surgeon")):
        team = (await c.post("/v1/teams", json={"name": team_name})).json()["id"]
        session = (await c.post("/v1/sessions", json={"team_id": team})).json()["id"]
        turn = {"role": "user", "name": "Mel", "content": f"I work at Acme as a {job}."}
        r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": [turn]})
        assert r.json()["job"]["status"] == "succeeded"
        assert r.json()["job"]["result"].get("memories_update", 0) == 0
        r = await c.get("/v1/memories", params={"session_id": session})
        contents[team_name] = [m["content"] for m in r.json()["data"]]
    assert any("nurse" in text for text in contents["t2"])
    assert any("surgeon" in text for text in contents["t1"])


async def test_a_statement_repeated_after_its_memory_expired_is_remembered_again(org: Org) -> None:
    c = org.client
    user = (await c.post("/v1/users", json={"external_id": "zed", "display_name": "Zed"})).json()["id"]
    expired = {"user_id": user, "content": "Zed lives in Lisbon.", "expires_at": "2000-01-01T00:00:00Z"}
    assert (await c.post("/v1/memories", json=expired)).status_code == 201
    session = (await c.post("/v1/sessions", json={"user_id": user})).json()["id"]
    turn = {"role": "user", "name": "Zed", "content": "I live in Lisbon."}
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": [turn]})
    assert r.json()["job"]["result"].get("memories_noop", 0) == 0  # not folded into the expired memory
    r = await c.get("/v1/memories", params={"user_id": user})
    assert [m["content"] for m in r.json()["data"]] == ["Zed lives in Lisbon."]

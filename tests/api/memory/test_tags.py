"""Tags: one model across sessions, messages, memories, documents and repositories; listed and renamed per org."""

from __future__ import annotations

from tests.conftest import Org, OrgFactory, assert_problem, client_for


async def _tagged(org: Org) -> dict[str, str]:
    c = org.client
    s = (await c.post("/v1/sessions", json={"tags": ["alpha", "beta"], "external_user_id": "tag-user"})).json()
    await c.post(
        f"/v1/sessions/{s['id']}/messages",
        json={"messages": [{"role": "user", "content": "hello", "tags": ["beta"]}], "extract": False},
    )
    m = (await c.post("/v1/memories", json={"content": "likes tea", "tags": ["alpha", "gamma"]})).json()
    d = (await c.post("/v1/documents", json={"content": "a doc", "path": "d.txt", "tags": ["alpha"]})).json()
    r = (await c.post("/v1/repositories", json={"name": "tagged", "tags": ["alpha", "beta"]})).json()
    return {"session": s["id"], "memory": m["id"], "document": d["document"]["id"], "repository": r["id"]}


async def test_tags_are_counted_across_every_kind(org: Org) -> None:
    await _tagged(org)
    r = await org.client.get("/v1/tags")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [(x["tag"], x["count"]) for x in data] == [("alpha", 4), ("beta", 3), ("gamma", 1)]
    assert data[0]["by_type"] == {"session": 1, "message": 0, "memory": 1, "document": 1, "repository": 1}
    assert data[1]["by_type"] == {"session": 1, "message": 1, "memory": 0, "document": 0, "repository": 1}
    assert [x["tag"] for x in (await org.client.get("/v1/tags", params={"prefix": "g"})).json()["data"]] == ["gamma"]
    first = (await org.client.get("/v1/tags", params={"limit": 2})).json()
    rest = (await org.client.get("/v1/tags", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [x["tag"] for x in first["data"] + rest["data"]] == ["alpha", "beta", "gamma"]
    assert rest["next_cursor"] is None
    assert_problem(await org.client.get("/v1/tags", params={"cursor": "bad"}), 400)


async def test_deleted_memories_are_not_counted(org: Org) -> None:
    m = (await org.client.post("/v1/memories", json={"content": "gone", "tags": ["ghost"]})).json()
    assert [x["tag"] for x in (await org.client.get("/v1/tags")).json()["data"]] == ["ghost"]
    await org.client.delete(f"/v1/memories/{m['id']}")
    assert (await org.client.get("/v1/tags")).json()["data"] == []


async def test_rename_everywhere_merging_duplicates(org: Org) -> None:
    ids = await _tagged(org)
    c = org.client
    r = await c.post("/v1/tags/rename", json={"from": "alpha", "to": "beta"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "tag": "beta",
        "renamed": {"session": 1, "message": 0, "memory": 1, "document": 1, "repository": 1},
        "total": 4,
    }
    assert (await c.get(f"/v1/sessions/{ids['session']}")).json()["tags"] == ["beta"]  # one copy kept
    assert (await c.get(f"/v1/memories/{ids['memory']}")).json()["tags"] == ["beta", "gamma"]
    assert (await c.get(f"/v1/documents/{ids['document']}")).json()["tags"] == ["beta"]
    assert (await c.get(f"/v1/repositories/{ids['repository']}")).json()["tags"] == ["beta"]
    counts = {x["tag"]: x["count"] for x in (await c.get("/v1/tags")).json()["data"]}
    assert counts == {"beta": 5, "gamma": 1}
    history = (await c.get(f"/v1/memories/{ids['memory']}/history")).json()["data"]
    assert history[-1]["action"] == "updated" and history[-1]["new_values"]["tags"] == ["beta", "gamma"]
    assert "renamed" in history[-1]["new_values"]["reason"]
    audit = (await c.get("/v1/audit", params={"action": "tags.renamed"})).json()["data"]
    assert audit[0]["details"]["from"] == "alpha" and audit[0]["details"]["to"] == "beta"
    assert_problem(await c.post("/v1/tags/rename", json={"from": "x", "to": "x"}), 422)
    assert_problem(await c.post("/v1/tags/rename", json={"from": "x", "to": "t" * 65}), 422)
    assert (await c.post("/v1/tags/rename", json={"from": "nowhere", "to": "x"})).json()["total"] == 0


async def test_bound_keys_count_their_own_and_cannot_rename(app, make_org: OrgFactory) -> None:  # type: ignore[no-untyped-def]
    org = await make_org()
    c = org.client
    alice = (await c.post("/v1/users", json={"external_id": "alice-tags"})).json()
    await c.post("/v1/memories", json={"content": "alice's", "tags": ["mine"], "user_id": alice["id"]})
    await c.post("/v1/memories", json={"content": "bob's", "tags": ["theirs"], "external_user_id": "bob-tags"})
    await c.post("/v1/documents", json={"content": "shared", "path": "s.txt", "tags": ["shared"]})
    key = (await c.post("/v1/keys", json={"name": "alice", "user_id": alice["id"]})).json()["api_key"]
    async with client_for(app, key) as as_alice:
        assert [x["tag"] for x in (await as_alice.get("/v1/tags")).json()["data"]] == ["mine"]
        assert_problem(await as_alice.post("/v1/tags/rename", json={"from": "mine", "to": "x"}), 403)
    assert {x["tag"] for x in (await c.get("/v1/tags")).json()["data"]} == {"mine", "theirs", "shared"}

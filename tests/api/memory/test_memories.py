from __future__ import annotations

from tests.conftest import Org, assert_problem, client_for


async def _memory(org: Org, **body: object) -> dict:  # type: ignore[type-arg]
    r = await org.client.post("/v1/memories", json={"content": "likes green tea", **body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_create_and_read_back(org: Org) -> None:
    s = (await org.client.post("/v1/sessions", json={"external_user_id": "u1"})).json()
    msg = (
        await org.client.post(
            f"/v1/sessions/{s['id']}/messages", json={"messages": [{"role": "user", "content": "I like green tea"}]}
        )
    ).json()["data"][0]
    m = await _memory(
        org,
        type="preference",
        external_user_id="u1",
        importance=0.8,
        tags=["drinks", "drinks"],
        categories=["food"],
        metadata={"confidence": "high"},
        session_id=s["id"],
        source_message_ids=[msg["id"]],
    )
    assert m["type"] == "preference" and m["state"] == "active" and m["version"] == 1
    assert m["tags"] == ["drinks"]  # de-duplicated
    assert m["user_id"] == s["user_id"] and m["source_message_ids"] == [msg["id"]]
    assert (await org.client.get(f"/v1/memories/{m['id']}")).json() == m


async def test_update_writes_history_with_old_and_new(org: Org) -> None:
    m = await _memory(org)
    r = await org.client.patch(f"/v1/memories/{m['id']}", json={"content": "likes black tea", "importance": 0.9})
    assert r.status_code == 200
    updated = r.json()
    assert updated["content"] == "likes black tea" and updated["version"] == 2
    # An update that changes nothing adds no version.
    same = (await org.client.patch(f"/v1/memories/{m['id']}", json={"importance": 0.9})).json()
    assert same["version"] == 2
    hist = (await org.client.get(f"/v1/memories/{m['id']}/history")).json()["data"]
    assert [h["action"] for h in hist] == ["created", "updated"]
    assert hist[1]["old_values"] == {"content": "likes green tea", "importance": 0.5}
    assert hist[1]["new_values"]["content"] == "likes black tea"
    assert hist[1]["actor"].startswith("key:") and hist[1]["request_id"]


async def test_state_changes_soft_and_hard_delete(org: Org) -> None:
    m = await _memory(org)
    archived = (await org.client.post(f"/v1/memories/{m['id']}/state", json={"state": "archived"})).json()
    assert archived["state"] == "archived" and archived["archived_at"]
    assert (await org.client.delete(f"/v1/memories/{m['id']}")).status_code == 204
    soft = (await org.client.get(f"/v1/memories/{m['id']}")).json()
    assert soft["state"] == "deleted" and soft["deleted_at"]
    assert m["id"] not in [x["id"] for x in (await org.client.get("/v1/memories")).json()["data"]]
    deleted = (await org.client.get("/v1/memories", params={"state": "deleted"})).json()["data"]
    assert m["id"] in [x["id"] for x in deleted]
    restored = (await org.client.post(f"/v1/memories/{m['id']}/state", json={"state": "active"})).json()
    assert restored["state"] == "active" and restored["deleted_at"] is None
    actions = [h["action"] for h in (await org.client.get(f"/v1/memories/{m['id']}/history")).json()["data"]]
    assert actions == ["created", "state_changed", "deleted", "state_changed"]
    assert (await org.client.delete(f"/v1/memories/{m['id']}", params={"hard": "true"})).status_code == 204
    assert_problem(await org.client.get(f"/v1/memories/{m['id']}"), 404)
    assert_problem(await org.client.get(f"/v1/memories/{m['id']}/history"), 404)
    audit = (await org.client.get("/v1/audit", params={"entity_id": m["id"]})).json()["data"]
    assert audit[0]["action"] == "memory.purged"


async def test_list_filters(org: Org) -> None:
    a = await _memory(org, external_user_id="fa", type="task", tags=["x"], categories=["work"], metadata={"k": 1})
    b = await _memory(org, external_user_id="fb", tags=["x", "y"])
    expired = await _memory(org, external_user_id="fa", expires_at="2000-01-01T00:00:00Z")

    async def ids(**params: object) -> list[str]:
        return [m["id"] for m in (await org.client.get("/v1/memories", params=params)).json()["data"]]

    assert await ids(external_user_id="fa") == [a["id"]]
    assert await ids(external_user_id="fa", include_expired="true") == [expired["id"], a["id"]]
    assert await ids(user_id=b["user_id"]) == [b["id"]]
    assert await ids(type="task") == [a["id"]]
    assert set(await ids(tags_any="x")) == {a["id"], b["id"]}
    assert await ids(tags_all=["x", "y"]) == [b["id"]]
    assert await ids(categories="work") == [a["id"]]
    assert await ids(metadata='{"k": 1}') == [a["id"]]
    assert await ids(created_after="2999-01-01T00:00:00Z") == []


async def test_memory_referencing_unknown_things_is_404(org: Org) -> None:
    for body in (
        {"session_id": "00000000-0000-7000-8000-000000000000"},
        {"agent_id": "00000000-0000-7000-8000-000000000000"},
        {"user_id": "00000000-0000-7000-8000-000000000000"},
    ):
        assert_problem(await org.client.post("/v1/memories", json={"content": "x", **body}), 404)


async def test_bad_memory_input(org: Org) -> None:
    for body in (
        {"content": ""},
        {"content": "x", "importance": 2},
        {"content": "x", "type": "gossip"},
        {"content": "x", "user_id": "00000000-0000-7000-8000-000000000000", "external_user_id": "a"},
        {"content": "x" * 8001},
        {"content": "x", "tags": ["t"] * 33},
    ):
        assert_problem(await org.client.post("/v1/memories", json=body), 422)
    m = await _memory(org)
    assert_problem(await org.client.post(f"/v1/memories/{m['id']}/state", json={"state": "gone"}), 422)


async def test_a_memorys_access_log_newest_first_and_only_for_who_sees_it(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    alice, bob = [(await c.post("/v1/users", json={"external_id": name})).json() for name in ("acc-a", "acc-b")]
    m = await _memory(org, content="prefers window seats on long flights", user_id=alice["id"])
    await app.state.runtime.access.flush()  # hits left by earlier tests
    searches = []
    for _ in range(2):
        r = await c.post("/v1/search", json={"query": "window seats", "types": ["memories"]})
        assert r.status_code == 200
        searches.append(r.headers["x-request-id"])
    assert await app.state.runtime.access.flush() >= 2
    url = f"/v1/memories/{m['id']}/accesses"
    log = (await c.get(url)).json()
    assert [a["memory_id"] for a in log["data"]] == [m["id"]] * 2 and log["next_cursor"] is None
    newest, oldest = log["data"]
    assert [newest["request_id"], oldest["request_id"]] == searches[::-1]
    assert newest["access_type"] == "search" and newest["key_id"] and newest["score"] > 0
    first = (await c.get(url, params={"limit": 1})).json()
    second = (await c.get(url, params={"limit": 1, "cursor": first["next_cursor"]})).json()
    assert [first["data"][0]["id"], second["data"][0]["id"]] == [newest["id"], oldest["id"]]
    assert second["next_cursor"] is None
    assert (await c.get(url, params={"access_type": "context"})).json()["data"] == []
    assert (await c.get(url, params={"accessed_after": "2999-01-01T00:00:00Z"})).json()["data"] == []
    assert (await c.get(url, params={"accessed_before": "2999-01-01T00:00:00Z"})).json()["data"] == log["data"]
    by_key = {"key_id": newest["key_id"], "memory_id": m["id"]}
    assert (await c.get("/v1/memory-accesses", params=by_key)).json()["data"] == log["data"]
    assert_problem(await c.get(url, params={"access_type": "peek"}), 422)
    assert_problem(await c.get("/v1/memories/00000000-0000-7000-8000-000000000000/accesses"), 404)
    # A key that sees the memory sees its log; one that does not gets a 404 and nothing of it in the list.
    for user, sees in ((alice, True), (bob, False)):
        key = (await c.post("/v1/keys", json={"name": "k", "scopes": ["read"], "user_id": user["id"]})).json()
        async with client_for(app, key["api_key"]) as bound:
            assert (await bound.get(url)).status_code == (200 if sees else 404)
            listed = (await bound.get("/v1/memory-accesses")).json()["data"]
            assert [a["id"] for a in listed] == ([a["id"] for a in log["data"]] if sees else [])

from __future__ import annotations

from tests.conftest import Org, assert_problem


async def _session(org: Org, **body: object) -> dict:  # type: ignore[type-arg]
    r = await org.client.post("/v1/sessions", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_health_needs_no_key(anon) -> None:  # type: ignore[no-untyped-def]
    r = await anon.get("/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "database": "ok", "version": "0.1.0"}
    assert r.headers["x-request-id"]


async def test_request_id_is_echoed(anon) -> None:  # type: ignore[no-untyped-def]
    r = await anon.get("/v1/health", headers={"X-Request-ID": "trace-123"})
    assert r.headers["x-request-id"] == "trace-123"


async def test_create_get_update_close_delete(org: Org) -> None:
    s = await _session(org, external_user_id="alice", title="Support", tags=["vip"], metadata={"channel": "web"})
    assert s["status"] == "active" and s["message_count"] == 0 and s["user_id"]
    got = (await org.client.get(f"/v1/sessions/{s['id']}")).json()
    assert got == s
    upd = (await org.client.patch(f"/v1/sessions/{s['id']}", json={"metadata": {"channel": "app"}})).json()
    assert upd["metadata"] == {"channel": "app"} and upd["title"] == "Support"
    closed = (await org.client.post(f"/v1/sessions/{s['id']}/close")).json()
    assert closed["status"] == "closed" and closed["closed_at"]
    again = (await org.client.post(f"/v1/sessions/{s['id']}/close")).json()
    assert again["closed_at"] == closed["closed_at"]
    r = await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": [{"role": "user", "content": "x"}]})
    assert_problem(r, 409)
    assert (await org.client.delete(f"/v1/sessions/{s['id']}")).status_code == 204
    assert_problem(await org.client.get(f"/v1/sessions/{s['id']}"), 404)


async def test_external_user_is_created_once(org: Org) -> None:
    a = await _session(org, external_user_id="bob")
    b = await _session(org, external_user_id="bob")
    assert a["user_id"] == b["user_id"]
    user = (await org.client.get("/v1/users/by-external-id/bob")).json()
    assert user["id"] == a["user_id"]
    listed = (await org.client.get("/v1/sessions", params={"external_user_id": "bob"})).json()["data"]
    assert {x["id"] for x in listed} == {a["id"], b["id"]}
    assert (await org.client.get("/v1/sessions", params={"external_user_id": "nobody"})).json()["data"] == []


async def test_session_list_filters_and_pages(org: Org) -> None:
    made = [await _session(org, tags=["even" if i % 2 == 0 else "odd"]) for i in range(5)]
    await org.client.post(f"/v1/sessions/{made[0]['id']}/close")
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await org.client.get("/v1/sessions", params=params)).json()
        seen += [x["id"] for x in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [m["id"] for m in reversed(made)]
    even = (await org.client.get("/v1/sessions", params={"tags_any": "even"})).json()["data"]
    assert len(even) == 3
    closed = (await org.client.get("/v1/sessions", params={"status": "closed"})).json()["data"]
    assert [x["id"] for x in closed] == [made[0]["id"]]
    await org.client.patch(f"/v1/sessions/{made[1]['id']}", json={"metadata": {"source": "crm", "n": 1}})
    by_meta = await org.client.get("/v1/sessions", params={"metadata": '{"source": "crm"}'})
    assert [x["id"] for x in by_meta.json()["data"]] == [made[1]["id"]]
    assert_problem(await org.client.get("/v1/sessions", params={"metadata": "[1]"}), 422)


async def test_messages_batch_order_and_filters(org: Org) -> None:
    s = await _session(org, external_user_id="carol")
    batch = [
        {
            "role": "user",
            "content": "I moved to Lisbon",
            "tags": ["move"],
            "metadata": {"topic": "home"},
            "occurred_at": "2023-05-08T13:56:00Z",
            "name": "Carol",
        },
        {"role": "assistant", "content": "Nice!", "occurred_at": "2023-05-08T13:57:00Z"},
        {
            "role": "user",
            "content": "Sister visits in May",
            "tags": ["family", "move"],
            "occurred_at": "2023-05-08T13:58:00+02:00",
            "channel": "sms",
        },
    ]
    r = await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": batch})
    assert r.status_code == 201
    stored = r.json()["data"]
    assert [m["seq"] for m in stored] == [1, 2, 3]
    assert stored[0]["name"] == "Carol" and stored[0]["user_id"] == s["user_id"]
    base = f"/v1/sessions/{s['id']}/messages"
    in_time = (await org.client.get(base)).json()["data"]
    # 13:58+02:00 is 11:58Z, the earliest
    assert [m["content"] for m in in_time] == ["Sister visits in May", "I moved to Lisbon", "Nice!"]
    desc = (await org.client.get(base, params={"order": "desc"})).json()["data"]
    assert [m["id"] for m in desc] == [m["id"] for m in reversed(in_time)]
    assert len((await org.client.get(base, params={"role": "assistant"})).json()["data"]) == 1
    assert len((await org.client.get(base, params={"tags_any": ["family", "nothing"]})).json()["data"]) == 1
    assert len((await org.client.get(base, params={"tags_all": ["family", "move"]})).json()["data"]) == 1
    assert len((await org.client.get(base, params={"tags_all": ["move"]})).json()["data"]) == 2
    meta = (await org.client.get(base, params={"metadata": '{"topic": "home"}'})).json()["data"]
    assert [m["content"] for m in meta] == ["I moved to Lisbon"]
    window = (await org.client.get(base, params={"occurred_after": "2023-05-08T13:56:30Z"})).json()["data"]
    assert [m["content"] for m in window] == ["Nice!"]
    assert_problem(await org.client.get(base, params={"metadata": "[1]"}), 422)
    session = (await org.client.get(f"/v1/sessions/{s['id']}")).json()
    assert session["message_count"] == 3
    assert session["last_message_at"].startswith("2023-05-08T13:57")


async def test_message_pages_walk_every_message_once(org: Org) -> None:
    s = await _session(org)
    batch = [{"role": "user", "content": f"m{i}", "occurred_at": "2024-01-01T00:00:00Z"} for i in range(7)]
    await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": batch})
    seen, cursor = [], None
    for _ in range(10):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await org.client.get(f"/v1/sessions/{s['id']}/messages", params=params)).json()
        seen += [m["content"] for m in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"m{i}" for i in range(7)]
    assert_problem(await org.client.get(f"/v1/sessions/{s['id']}/messages", params={"cursor": "garbage!"}), 400)


async def test_threading_and_single_message(org: Org) -> None:
    s = await _session(org)
    first = (
        await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": [{"role": "user", "content": "q"}]})
    ).json()["data"][0]
    reply = (
        await org.client.post(
            f"/v1/sessions/{s['id']}/messages",
            json={"messages": [{"role": "assistant", "content": "a", "parent_id": first["id"]}]},
        )
    ).json()["data"][0]
    assert reply["parent_id"] == first["id"]
    assert (await org.client.get(f"/v1/messages/{reply['id']}")).json() == reply
    other = await _session(org)
    r = await org.client.post(
        f"/v1/sessions/{other['id']}/messages",
        json={"messages": [{"role": "assistant", "content": "a", "parent_id": first["id"]}]},
    )
    assert_problem(r, 404)


async def test_a_failing_batch_writes_nothing(org: Org) -> None:
    s = await _session(org)
    r = await org.client.post(
        f"/v1/sessions/{s['id']}/messages",
        json={
            "messages": [
                {"role": "user", "content": "fine"},
                {"role": "user", "content": "bad parent", "parent_id": "00000000-0000-7000-8000-000000000000"},
            ]
        },
    )
    assert_problem(r, 404)
    assert (await org.client.get(f"/v1/sessions/{s['id']}/messages")).json()["data"] == []
    assert (await org.client.get(f"/v1/sessions/{s['id']}")).json()["message_count"] == 0


async def test_per_message_users_in_a_group_chat(org: Org) -> None:
    s = await _session(org, external_user_id="host")
    stored = (
        await org.client.post(
            f"/v1/sessions/{s['id']}/messages",
            json={
                "messages": [
                    {"role": "user", "content": "hi", "external_user_id": "guest"},
                    {"role": "user", "content": "hello"},
                ]
            },
        )
    ).json()["data"]
    guest = (await org.client.get("/v1/users/by-external-id/guest")).json()
    assert stored[0]["user_id"] == guest["id"]
    assert stored[1]["user_id"] == s["user_id"]


async def test_deleting_a_session_unlinks_memories_with_history(org: Org) -> None:
    s = await _session(org)
    memory = (await org.client.post("/v1/memories", json={"content": "x", "session_id": s["id"]})).json()
    assert (await org.client.delete(f"/v1/sessions/{s['id']}")).status_code == 204
    after = (await org.client.get(f"/v1/memories/{memory['id']}")).json()
    assert after["session_id"] is None
    history = (await org.client.get(f"/v1/memories/{memory['id']}/history")).json()["data"]
    assert history[-1]["action"] == "unlinked"
    assert history[-1]["new_values"] == {"session_id": None, "reason": "session deleted"}

from __future__ import annotations

from tests.conftest import Org


async def test_every_mutation_is_audited_with_request_facts(org: Org) -> None:
    c = org.client
    steps = [
        ("post", "/v1/teams", {"name": "t"}, "team.created"),
        ("post", "/v1/sessions", {"external_user_id": "aud"}, "session.created"),
    ]
    ids = {}
    for method, url, body, action in steps:
        r = await c.request(method.upper(), url, json=body, headers={"X-Request-ID": f"req-{action}"})
        ids[action] = r.json()["id"]
    sid = ids["session.created"]
    await c.post(
        f"/v1/sessions/{sid}/messages",
        json={"messages": [{"role": "user", "content": "x"}] * 2},
        headers={"X-Request-ID": "req-msgs"},
    )
    mem = (await c.post("/v1/memories", json={"content": "m"})).json()
    await c.patch(f"/v1/memories/{mem['id']}", json={"content": "n"})
    await c.patch(f"/v1/sessions/{sid}", json={"title": "x"})
    await c.post(f"/v1/sessions/{sid}/close")
    await c.delete(f"/v1/sessions/{sid}")
    entries = (await c.get("/v1/audit", params={"limit": 100})).json()["data"]
    actions = [e["action"] for e in reversed(entries)]
    assert actions == [
        "organization.created",
        "api_key.created",
        "team.created",
        "user.created",
        "session.created",
        "messages.added",
        "memory.created",
        "memory.updated",
        "session.updated",
        "session.closed",
        "session.deleted",
    ]
    by_action = {e["action"]: e for e in entries}
    assert by_action["team.created"]["request_id"] == "req-team.created"
    assert by_action["team.created"]["entity_id"] == ids["team.created"]
    assert by_action["messages.added"]["details"]["count"] == 2
    assert by_action["session.created"]["client_addr"] == "127.0.0.1"
    assert by_action["session.created"]["key_id"]
    only = (await c.get("/v1/audit", params={"action": "memory.updated"})).json()["data"]
    assert [e["entity_id"] for e in only] == [mem["id"]]
    assert (await c.get("/v1/audit", params={"entity_type": "team"})).json()["data"][0]["action"] == "team.created"


async def test_reads_and_failed_writes_are_not_audited(org: Org) -> None:
    before = len((await org.client.get("/v1/audit")).json()["data"])
    await org.client.get("/v1/memories")
    await org.client.post("/v1/memories", json={"content": "x", "session_id": "00000000-0000-7000-8000-000000000000"})
    assert len((await org.client.get("/v1/audit")).json()["data"]) == before

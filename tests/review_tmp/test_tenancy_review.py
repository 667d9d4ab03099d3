"""Review proofs: bound-key confinement on facts, entities, narratives, jobs."""

from __future__ import annotations

from tests.conftest import Org, client_for


async def test_team_bound_key_reads_facts_of_another_teams_user(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    mine = (await c.post("/v1/teams", json={"name": "mine"})).json()
    other = (await c.post("/v1/teams", json={"name": "other"})).json()
    bob = (await c.post("/v1/users", json={"external_id": "bob-t", "team_id": other["id"]})).json()
    bob_session = (await c.post("/v1/sessions", json={"user_id": bob["id"], "team_id": other["id"]})).json()
    fact = (
        await c.post(
            "/v1/facts",
            json={"subject": "Bob", "predicate": "has", "object": "HIV", "user_id": bob["id"]},
        )
    ).json()["fact"]
    key = (await c.post("/v1/keys", json={"name": "t", "team_id": mine["id"]})).json()["api_key"]
    async with client_for(app, key) as team:
        # The session itself is hidden from this key ...
        assert (await team.get(f"/v1/sessions/{bob_session['id']}")).status_code == 404
        # ... but the facts of that team's user are not.
        r_list = await team.get("/v1/facts")
        r_one = await team.get(f"/v1/facts/{fact['id']}")
        r_ent = await team.get(f"/v1/entities/{fact['subject_id']}")
        print("team key: list", len(r_list.json()["data"]), "get", r_one.status_code, "entity", r_ent.status_code)
        assert r_one.status_code == 404
        assert r_ent.status_code == 404


async def test_agent_bound_key_narrative_request_answers_404_after_queueing(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    agent = (await c.post("/v1/agents", json={"name": "a1"})).json()
    user = (await c.post("/v1/users", json={"external_id": "nar-u"})).json()
    key = (
        await c.post("/v1/keys", json={"name": "a", "agent_id": agent["id"], "scopes": ["read", "write"]})
    ).json()["api_key"]
    async with client_for(app, key) as bound:
        r = await bound.post(f"/v1/users/{user['id']}/narrative")
        print("agent-bound narrative request:", r.status_code, r.text[:200])
    jobs = (await c.get("/v1/jobs", params={"kind": "engram.narrate"})).json()["data"]
    print("narrate jobs queued:", len(jobs))
    assert r.status_code == 202


async def test_user_bound_key_renames_an_org_shared_entity(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    shared = (
        await c.post("/v1/facts", json={"subject": "Acme", "predicate": "based_in", "object": "Lisbon"})
    ).json()["fact"]
    alice = (await c.post("/v1/users", json={"external_id": "alice-sh"})).json()
    key = (
        await c.post("/v1/keys", json={"name": "al", "user_id": alice["id"], "scopes": ["read", "write"]})
    ).json()["api_key"]
    async with client_for(app, key) as as_alice:
        r = await as_alice.patch(f"/v1/entities/{shared['subject_id']}", json={"name": "Evil Corp"})
        print("user-bound PATCH of shared entity:", r.status_code)
    admin_view = (await c.get(f"/v1/entities/{shared['subject_id']}")).json()
    print("shared entity now named:", admin_view["name"])
    assert r.status_code in (403, 404)

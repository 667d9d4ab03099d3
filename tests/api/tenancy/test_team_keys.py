"""A team-bound key reaches the same rows in every resource: those filed under its team, and those of its
users and of its agents (the team's own and its users'), never those of anyone else; and it writes only
for them."""

from __future__ import annotations

from typing import Any

from tests.conftest import Org, client_for


async def test_a_team_key_sees_its_members_and_agents_rows_in_every_resource(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client

    async def made(path: str, body: dict[str, Any], key: str | None = None) -> Any:
        r = await c.post(path, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()[key] if key else r.json()

    team = (await made("/v1/teams", {"name": "ops"}))["id"]
    other = (await made("/v1/teams", {"name": "other"}))["id"]
    amy = (await made("/v1/users", {"external_id": "amy", "team_id": team}))["id"]
    bob = (await made("/v1/users", {"external_id": "bob", "team_id": other}))["id"]
    team_agent = (await made("/v1/agents", {"name": "ops-bot", "team_id": team}))["id"]
    amys_agent = (await made("/v1/agents", {"name": "amy-bot", "user_id": amy}))["id"]
    bobs_agent = (await made("/v1/agents", {"name": "bob-bot", "user_id": bob}))["id"]
    owners = {
        "amy": {"user_id": amy},
        "team agent": {"agent_id": team_agent},
        "amy's agent": {"agent_id": amys_agent},
        "bob": {"user_id": bob},
        "bob's agent": {"agent_id": bobs_agent},
    }
    rows: dict[str, dict[str, str]] = {}
    for name, owner in owners.items():
        word = name.replace("'", "").replace(" ", "")
        session = (await made("/v1/sessions", owner))["id"]
        fact = await made(
            "/v1/facts",
            {**owner, "subject": f"Ent{word}", "predicate": "uses", "object": f"Tool{word}", "object_is_entity": True},
            "fact",
        )
        rows[name] = {
            "sessions": session,
            "memories": (await made("/v1/memories", {**owner, "content": f"runbook {word}"}))["id"],
            "facts": fact["id"],
            "entities": fact["subject_id"],
            "documents": (await made("/v1/documents", {**owner, "content": f"runbook {word}"}, "document"))["id"],
        }
    key = (await made("/v1/keys", {"name": "ops", "team_id": team}))["api_key"]
    inside = {"amy", "team agent", "amy's agent"}
    async with client_for(app, key) as ops:
        for name, ids in rows.items():
            for resource, row_id in ids.items():
                r = await ops.get(f"/v1/{resource}/{row_id}")
                assert r.status_code == (200 if name in inside else 404), (name, resource, r.text)
        found = await ops.post("/v1/search", json={"query": "runbook", "types": ["memories", "documents"], "top_k": 50})
        hits = {h.get("document_id") or h["id"] for h in found.json()["results"]}
        expected = {rows[n][k] for n in inside for k in ("memories", "documents")}
        assert hits == expected
        walk = await ops.get(f"/v1/entities/{rows['team agent']['entities']}/neighbors")
        assert walk.status_code == 200 and [e["fact_id"] for e in walk.json()["edges"]] == [rows["team agent"]["facts"]]
        # Writes: for its agents too (a document has no team: one of its agents may own it), never for others.
        r = await ops.post("/v1/documents", json={"content": "ops notes", "agent_id": team_agent})
        assert r.status_code == 201, r.text
        assert (await ops.get(f"/v1/documents/{r.json()['document']['id']}")).status_code == 200
        for body in ({"agent_id": bobs_agent}, {"user_id": bob}, {}):
            r = await ops.post("/v1/documents", json={"content": "ops notes", **body})
            assert r.status_code == 403, (body, r.text)

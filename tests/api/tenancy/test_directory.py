from __future__ import annotations

import pytest

from tests.conftest import Org, assert_problem

RESOURCES = [
    ("teams", {"name": "red"}, {"description": "the red team"}),
    ("agents", {"name": "scheduler"}, {"description": "books meetings"}),
    ("apps", {"name": "crm"}, {"is_active": False}),
    ("users", {"external_id": "u-1", "display_name": "Ann"}, {"email": "ann@example.com"}),
]


@pytest.mark.parametrize(("plural", "create", "update"), RESOURCES)
async def test_crud(org: Org, plural: str, create: dict, update: dict) -> None:  # type: ignore[type-arg]
    c = org.client
    made = (await c.post(f"/v1/{plural}", json=create)).json()
    assert made["id"] and made["metadata"] == {}
    assert (await c.get(f"/v1/{plural}/{made['id']}")).json() == made
    changed = (await c.patch(f"/v1/{plural}/{made['id']}", json=update)).json()
    for k, v in update.items():
        assert changed[k] == v
    assert changed["updated_at"] >= made["updated_at"]
    listed = (await c.get(f"/v1/{plural}")).json()
    assert [x["id"] for x in listed["data"]] == [made["id"]] and listed["next_cursor"] is None
    dup = await c.post(f"/v1/{plural}", json=create)
    assert_problem(dup, 409)
    assert (await c.delete(f"/v1/{plural}/{made['id']}")).status_code == 204
    assert_problem(await c.get(f"/v1/{plural}/{made['id']}"), 404)
    assert_problem(await c.delete(f"/v1/{plural}/{made['id']}"), 404)


async def test_deleting_a_team_unassigns_but_keeps_its_members(org: Org) -> None:
    c = org.client
    team = (await c.post("/v1/teams", json={"name": "t"})).json()
    user = (await c.post("/v1/users", json={"team_id": team["id"]})).json()
    session = (await c.post("/v1/sessions", json={"team_id": team["id"], "user_id": user["id"]})).json()
    assert (await c.delete(f"/v1/teams/{team['id']}")).status_code == 204
    assert (await c.get(f"/v1/users/{user['id']}")).json()["team_id"] is None
    assert (await c.get(f"/v1/sessions/{session['id']}")).json()["team_id"] is None


async def test_deleting_a_user_erases_their_data(org: Org) -> None:
    c = org.client
    session = (await c.post("/v1/sessions", json={"external_user_id": "gone"})).json()
    memory = (await c.post("/v1/memories", json={"external_user_id": "gone", "content": "x"})).json()
    assert (await c.delete(f"/v1/users/{session['user_id']}")).status_code == 204
    assert_problem(await c.get(f"/v1/sessions/{session['id']}"), 404)
    assert_problem(await c.get(f"/v1/memories/{memory['id']}"), 404)
    assert_problem(await c.get("/v1/users/by-external-id/gone"), 404)


async def test_references_must_exist_in_the_org(org: Org) -> None:
    missing = "00000000-0000-7000-8000-000000000000"
    assert_problem(await org.client.post("/v1/users", json={"team_id": missing}), 404)
    assert_problem(await org.client.post("/v1/agents", json={"name": "a", "user_id": missing}), 404)
    agent = (await org.client.post("/v1/agents", json={"name": "b"})).json()
    assert_problem(await org.client.patch(f"/v1/agents/{agent['id']}", json={"team_id": missing}), 404)


async def test_renaming_onto_an_existing_name_conflicts(org: Org) -> None:
    await org.client.post("/v1/apps", json={"name": "one"})
    two = (await org.client.post("/v1/apps", json={"name": "two"})).json()
    assert_problem(await org.client.patch(f"/v1/apps/{two['id']}", json={"name": "one"}), 409)


async def test_user_erasure_keeps_other_users_data_consistent(org: Org) -> None:
    c = org.client
    a = (await c.post("/v1/sessions", json={"external_user_id": "keeper"})).json()
    b = (await c.post("/v1/sessions", json={"external_user_id": "leaver"})).json()
    await c.post(
        f"/v1/sessions/{a['id']}/messages",
        json={
            "messages": [
                {"role": "user", "content": "mine"},
                {"role": "user", "content": "theirs", "external_user_id": "leaver"},
            ]
        },
    )
    keeper_memory = (
        await c.post("/v1/memories", json={"external_user_id": "keeper", "content": "x", "session_id": b["id"]})
    ).json()
    assert (await c.delete(f"/v1/users/{b['user_id']}")).status_code == 204
    session = (await c.get(f"/v1/sessions/{a['id']}")).json()
    assert session["message_count"] == 1
    assert [m["content"] for m in (await c.get(f"/v1/sessions/{a['id']}/messages")).json()["data"]] == ["mine"]
    memory = (await c.get(f"/v1/memories/{keeper_memory['id']}")).json()
    assert memory["session_id"] is None and memory["version"] == 2
    history = (await c.get(f"/v1/memories/{keeper_memory['id']}/history")).json()["data"]
    # The history says which session it was linked to by the erasure's pseudonym, never the erased id.
    pseudonym = (await c.get("/v1/audit", params={"action": "user.deleted"})).json()["data"][0]["entity_id"]
    assert history[-1]["action"] == "unlinked" and history[-1]["old_values"] == {"session_id": pseudonym}
    assert history[0]["new_values"]["session_id"] == pseudonym and b["id"] not in str(history)
    # New messages keep counting on after the erasure.
    more = await c.post(f"/v1/sessions/{a['id']}/messages", json={"messages": [{"role": "user", "content": "n"}]})
    assert more.json()["data"][0]["seq"] == 3


async def test_organization_names_are_unique_even_under_races(db) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from engramdb.errors import Conflict, ValidationFailed
    from engramdb.services.tenancy import keys

    results = await asyncio.gather(
        *(keys.create_organization(db, name="racy") for _ in range(3)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 2
    with pytest.raises(ValidationFailed):
        await keys.create_organization(db, name="  ")

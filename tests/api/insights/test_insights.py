"""Federated insights over the API: five federated organizations release noisy histograms whose data path is
exact (each contribution is clamped and recorded), a release past a budget or below the minimum is refused,
a non-participant sees nothing, and only federated organizations and teams may join."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import Org, OrgFactory, assert_problem

# Each participant's memories by type: with bound 1, a participant counts 1 in each type it has any of.
MEMORIES = [("fact", 3), ("preference", 1)]


@dataclass
class World:
    owner: Org
    members: list[Org]
    shared: Org  # invited, isolation shared
    outsider: Org  # never invited


async def _federate(org: Org) -> None:
    r = await org.client.patch("/v1/organization", json={"isolation": "federated"})
    assert r.status_code == 200 and r.json()["isolation"] == "federated", r.text


@pytest.fixture(scope="module")
async def world(make_org: OrgFactory) -> World:
    owner = await make_org()
    members = [await make_org() for _ in range(5)]
    for i, member in enumerate(members):
        await _federate(member)
        for memory_type, n in MEMORIES:
            for j in range(n):
                body = {"content": f"member {i} {memory_type} {j}", "type": memory_type}
                assert (await member.client.post("/v1/memories", json=body)).status_code == 201
    return World(owner=owner, members=members, shared=await make_org(), outsider=await make_org())


async def _open(world: World, invited: list[Org], **extra: Any) -> dict[str, Any]:
    body = {"topic": "memory mix", "query": "memory_types", "invited_org_ids": [str(o.id) for o in invited], **extra}
    r = await world.owner.client.post("/v1/insights/sessions", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _join(org: Org, session_id: str, **body: Any) -> Any:
    return await org.client.post(f"/v1/insights/sessions/{session_id}/join", json=body)


async def test_five_participants_release_until_their_budget_is_spent(world: World) -> None:
    session = await _open(world, [*world.members, world.outsider], epsilon=1.0)
    assert session["sensitivity"] == 5 and session["noise_scale"] == 5 and session["role"] == "owner"
    sid = session["id"]
    for member in world.members:
        r = await _join(member, sid, epsilon_budget=5.0)
        assert r.status_code == 201, r.text
    assert (await world.owner.client.get(f"/v1/insights/sessions/{sid}")).json()["participants"] == 5
    released = []
    for _ in range(5):
        r = await world.owner.client.post(f"/v1/insights/sessions/{sid}/release")
        assert r.status_code == 201, r.text
        released.append(r.json())
    insight = released[0]
    assert [b["bucket"] for b in insight["histogram"]] == ["fact", "preference", "task", "procedural", "episodic"]
    assert insight["mechanism"] == "discrete_laplace" and insight["participants"] == 5
    assert (insight["epsilon"], insight["delta"], insight["sensitivity"], insight["scale"]) == (1.0, 0.0, 5, 5)
    # The sixth would overspend every participant's budget of 5 at ε = 1 each.
    refused = assert_problem(await world.owner.client.post(f"/v1/insights/sessions/{sid}/release"), 409)
    assert "privacy budget" in str(refused["detail"]) and "spent" in str(refused["detail"])
    # Each participant reads the insights (its own copies) and its own record, exact: with bound 1 it gave 1
    # in each of the two types it has (3 facts clamped to 1), five times.
    member = world.members[0]
    mine = (await member.client.get(f"/v1/insights/sessions/{sid}/insights")).json()["data"]
    assert sorted(i["id"] for i in mine) == sorted(i["id"] for i in released)
    assert {i["id"]: i["histogram"] for i in mine} == {i["id"]: i["histogram"] for i in released}
    (part,) = (await member.client.get("/v1/insights/participations", params={"status": "joined"})).json()["data"]
    assert (part["epsilon_spent"], part["epsilon_remaining"], part["releases"]) == (5.0, 0.0, 5)
    contributions = (await member.client.get(f"/v1/insights/participations/{part['id']}/contributions")).json()
    assert [(c["clamped_total"], c["buckets_present"], c["epsilon"]) for c in contributions["data"]] == [
        (2, 2, 1.0)
    ] * 5
    # Nobody else reads that record: not the owner, not another participant.
    for other in (world.owner, world.members[1]):
        r = await other.client.get(f"/v1/insights/participations/{part['id']}/contributions")
        assert_problem(r, 404)
    # A participant may not release (only the owner spends the budgets it was given).
    assert_problem(await member.client.post(f"/v1/insights/sessions/{sid}/release"), 403)
    # The invited outsider that never joined sees the session but no insight; the owner sees its own copies.
    assert (await world.outsider.client.get(f"/v1/insights/sessions/{sid}")).json()["role"] == "invited"
    assert (await world.outsider.client.get(f"/v1/insights/sessions/{sid}/insights")).json()["data"] == []
    assert len((await world.owner.client.get(f"/v1/insights/sessions/{sid}/insights")).json()["data"]) == 5


async def test_fewer_than_the_minimum_release_nothing(world: World) -> None:
    session = await _open(world, world.members)
    for member in world.members[:4]:
        assert (await _join(member, session["id"])).status_code == 201
    r = await world.owner.client.post(f"/v1/insights/sessions/{session['id']}/release")
    assert "4 participants joined" in str(assert_problem(r, 409)["detail"])
    too_few = {"topic": "x", "query": "memory_types", "min_participants": 4}
    assert_problem(await world.owner.client.post("/v1/insights/sessions", json=too_few), 422)
    # Nothing was spent by the refusal.
    parts = (await world.members[0].client.get("/v1/insights/participations", params={"status": "joined"})).json()
    assert {p["session_id"]: p["epsilon_spent"] for p in parts["data"]}[session["id"]] == 0.0


async def test_a_non_participant_sees_nothing(world: World) -> None:
    session = await _open(world, world.members)
    sid = session["id"]
    c = world.outsider.client
    for r in (
        await c.get(f"/v1/insights/sessions/{sid}"),
        await c.get(f"/v1/insights/sessions/{sid}/insights"),
        await c.post(f"/v1/insights/sessions/{sid}/join", json={}),
        await c.post(f"/v1/insights/sessions/{sid}/leave"),
        await c.post(f"/v1/insights/sessions/{sid}/release"),
        await c.post(f"/v1/insights/sessions/{sid}/close"),
    ):
        assert_problem(r, 404)
    listed = (await c.get("/v1/insights/sessions")).json()["data"]
    assert sid not in {s["id"] for s in listed}


async def test_only_federated_organizations_and_teams_join(world: World) -> None:
    owner = world.owner.client
    session = await _open(world, [world.shared])
    r = await _join(world.shared, session["id"])
    assert "isolation is shared" in str(assert_problem(r, 409)["detail"])
    # A team joins as itself only when the team is federated, and only to a query over rows that carry a team.
    team = (await world.shared.client.post("/v1/teams", json={"name": "research"})).json()
    assert_problem(await _join(world.shared, session["id"], team_id=team["id"]), 409)
    await world.shared.client.patch(f"/v1/teams/{team['id']}", json={"isolation": "federated"})
    joined = await _join(world.shared, session["id"], team_id=team["id"])
    assert joined.status_code == 201, joined.text
    assert joined.json()["team_id"] == team["id"]
    # The organization takes part through its team already: it cannot join as itself too.
    await _federate(world.shared)
    assert "not both" in str(assert_problem(await _join(world.shared, session["id"]), 409)["detail"])
    facts = await _open(world, [world.shared], query="fact_predicates", buckets=["likes", "works_at"])
    assert_problem(await _join(world.shared, facts["id"], team_id=team["id"]), 422)
    # Closed: no more joins, no more releases.
    assert (await owner.post(f"/v1/insights/sessions/{facts['id']}/close")).json()["status"] == "closed"
    assert_problem(await _join(world.shared, facts["id"]), 409)
    assert_problem(await owner.post(f"/v1/insights/sessions/{facts['id']}/release"), 409)


async def test_session_bodies_are_checked(world: World) -> None:
    c = world.owner.client
    for body in (
        {"topic": "x", "query": "fact_predicates"},  # open-ended values must be named
        {"topic": "x", "query": "memory_types", "buckets": ["fact", "fact"]},
        {"topic": "x", "query": "task_outcomes", "buckets": ["working"]},
        {"topic": "x", "query": "memory_types", "epsilon": 0},
        {"topic": "x", "query": "memory_types", "epsilon": 1e-300},  # noise so wide its size overflows
        {"topic": "x", "query": "memory_types", "surprise": 1},
    ):
        assert_problem(await c.post("/v1/insights/sessions", json=body), 422)
    unknown = {"topic": "x", "query": "memory_types", "invited_org_ids": ["00000000-0000-0000-0000-00000000beef"]}
    assert_problem(await c.post("/v1/insights/sessions", json=unknown), 404)
    assert_problem(await c.patch("/v1/organization", json={"isolation": None}), 422)
    assert_problem(await c.patch("/v1/organization", json={"isolation": "open"}), 422)

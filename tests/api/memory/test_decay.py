"""``GET``/``PUT /v1/decay``: an organization's own half-lives replace the server's, for it alone, in search."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.conftest import Org, OrgFactory, assert_problem, client_for


def _in_force(body: dict) -> dict[str, float]:  # type: ignore[type-arg]
    return {d["memory_type"]: d["half_life_days"] for d in body["data"]}


async def _explained(org: Org, query: str) -> dict[str, dict]:  # type: ignore[type-arg]
    r = await org.client.post(
        "/v1/search", json={"query": query, "types": ["memories"], "explain": True, "weights": {"importance": 1.0}}
    )
    assert r.status_code == 200, r.text
    return {hit["id"]: hit["explanation"] for hit in r.json()["results"]}


async def test_an_organizations_half_lives_replace_the_servers_for_it_alone(
    make_org: OrgFactory, database_url: str
) -> None:
    mine, theirs = await make_org(), await make_org()
    server = _in_force((await mine.client.get("/v1/decay")).json())
    assert server == {"episodic": 30.0, "task": 14.0, "preference": 180.0, "fact": 0.0, "procedural": 0.0}

    r = await mine.client.put("/v1/decay", json={"half_life_days": {"episodic": 7, "fact": 60}})
    assert r.status_code == 200, r.text
    shown = {d["memory_type"]: d for d in r.json()["data"]}
    assert shown["episodic"] == {
        "memory_type": "episodic",
        "half_life_days": 7.0,
        "default_half_life_days": 30.0,
        "override_half_life_days": 7.0,
    }
    assert shown["task"]["half_life_days"] == 14.0 and shown["task"]["override_half_life_days"] is None
    assert _in_force((await theirs.client.get("/v1/decay")).json()) == server  # the other organization's own

    made = {}
    for org in (mine, theirs):
        for kind in ("episodic", "fact"):
            body = {"content": f"walked the {kind} canal path", "type": kind, "importance": 0.8}
            made[(org.id, kind)] = (await org.client.post("/v1/memories", json=body)).json()["id"]
    with psycopg.connect(database_url, autocommit=True) as conn:  # all last used 21 days ago
        conn.execute(
            "UPDATE memory SET created_at = now() - interval '21 days', updated_at = now() - interval '21 days', "
            "last_accessed_at = now() - interval '21 days' WHERE id = ANY(%s)",
            ([uuid.UUID(i) for i in made.values()],),
        )
    seen = await _explained(mine, "walked the canal path")
    assert seen[made[(mine.id, "episodic")]]["decay"] == pytest.approx(2 ** (-21 / 7), rel=0.01)
    assert seen[made[(mine.id, "fact")]]["decay"] == pytest.approx(2 ** (-21 / 60), rel=0.01)
    seen = await _explained(theirs, "walked the canal path")
    assert seen[made[(theirs.id, "episodic")]]["decay"] == pytest.approx(2 ** (-21 / 30), rel=0.01)
    assert seen[made[(theirs.id, "fact")]]["decay"] == 1.0

    # Whole: a type left out has the server's again; an empty map is every type back to the server's.
    again = (await mine.client.put("/v1/decay", json={"half_life_days": {"task": 0}})).json()
    assert _in_force(again) == {**server, "task": 0.0}
    assert _in_force((await mine.client.put("/v1/decay", json={"half_life_days": {}})).json()) == server
    audit = (await mine.client.get("/v1/audit", params={"action": "decay.updated"})).json()["data"]
    assert len(audit) == 3


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"half_life_days": {"gossip": 3}}, "gossip"),
        ({"half_life_days": {"episodic": -1}}, "episodic"),
        ({"half_life_days": {"episodic": 40_000}}, "episodic"),
        ({"half_life_days": {"episodic": "soon"}}, "episodic"),
        ({"half_life_days": {"episodic": False}}, "episodic"),
        ({"half_life_days": {"episodic": "7"}}, "episodic"),
        ({"half_life_days": {}, "speed": 2}, "speed"),
        ({}, "half_life_days"),
    ],
)
async def test_bad_half_lives_are_refused_by_name_and_change_nothing(org: Org, body: dict, named: str) -> None:  # type: ignore[type-arg]
    before = (await org.client.get("/v1/decay")).json()
    problem = assert_problem(await org.client.put("/v1/decay", json=body), 422)
    assert named in str(problem)
    assert (await org.client.get("/v1/decay")).json() == before


async def test_setting_half_lives_takes_an_admin_key(org: Org, app) -> None:  # type: ignore[no-untyped-def]
    key = (await org.client.post("/v1/keys", json={"name": "writer", "scopes": ["write"]})).json()["api_key"]
    async with client_for(app, key) as writer:
        assert (await writer.get("/v1/decay")).status_code == 200
        assert_problem(await writer.put("/v1/decay", json={"half_life_days": {"episodic": 1}}), 403)

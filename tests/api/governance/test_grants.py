"""Access grants: a grant lets exactly its grantee see exactly its rows, on every read route (get, list,
search, context, graph walk, export), and no more once it is revoked or expired; a strict team refuses
grants and makes those it had inert; grants stay inside their organization."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import Org, OrgFactory, assert_problem, client_for


@dataclass
class World:
    org: Org
    ids: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)  # grantee name -> API key secret
    kinds: dict[str, str] = field(default_factory=dict)  # id -> its kind (memory, session, ...)


@pytest.fixture(scope="module")
async def world(make_org: OrgFactory) -> World:
    """Alice (of team sales) owns one of everything, tagged ``account`` or not; support (a team with its
    key), Victor (a user with his key) and a helper agent (with its key) hold nothing of hers."""
    org = await make_org()
    c = org.client

    async def made(path: str, body: dict[str, Any], *keys: str) -> Any:
        r = await c.post(path, json=body)
        assert r.status_code in (200, 201), r.text
        found = r.json()
        for key in keys:
            found = found[key]
        return found

    ids: dict[str, str] = {}
    ids["sales"] = (await made("/v1/teams", {"name": "sales"}))["id"]
    ids["support"] = (await made("/v1/teams", {"name": "support"}))["id"]
    ids["alice"] = (await made("/v1/users", {"external_id": "alice", "team_id": ids["sales"]}))["id"]
    ids["victor"] = (await made("/v1/users", {"external_id": "victor"}))["id"]
    ids["helper"] = (await made("/v1/agents", {"name": "helper"}))["id"]
    alice = {"user_id": ids["alice"]}
    ids["session"] = (await made("/v1/sessions", {**alice, "tags": ["account"]}))["id"]
    ids["other_session"] = (await made("/v1/sessions", alice))["id"]
    ids["message"] = (
        await made(
            f"/v1/sessions/{ids['session']}/messages",
            {"messages": [{"role": "user", "content": "My account number at Zorbank is 4711"}], "extract": False},
            "data",
        )
    )[0]["id"]
    ids["other_message"] = (
        await made(
            f"/v1/sessions/{ids['other_session']}/messages",
            {"messages": [{"role": "user", "content": "My Zorbank account pin is 0000"}], "extract": False},
            "data",
        )
    )[0]["id"]
    memory = {**alice, "type": "preference"}
    ids["memory"] = (await made("/v1/memories", {**memory, "content": "Alice's Zorbank account", "tags": ["account"]}))[
        "id"
    ]
    ids["other_memory"] = (
        await made("/v1/memories", {**memory, "content": "Alice's Zorbank account secret", "tags": ["private"]})
    )["id"]
    fact = {**alice, "predicate": "banks_with", "object_is_entity": True}
    made_fact = await made("/v1/facts", {**fact, "subject": "Alice", "object": "Zorbank"}, "fact")
    ids["fact"], ids["entity"] = made_fact["id"], made_fact["subject_id"]
    doc = {**alice, "content": "Zorbank account statement of Alice"}
    ids["document"] = (await made("/v1/documents", {**doc, "tags": ["account"]}, "document"))["id"]
    ids["other_document"] = (await made("/v1/documents", {**doc, "content": "Zorbank account diary"}, "document"))["id"]
    world = World(org=org, ids=ids)
    for name, binding in (("support", "team_id"), ("victor", "user_id"), ("helper", "agent_id")):
        key = await made("/v1/keys", {"name": name, "scopes": ["read", "write"], binding: ids[name]})
        world.keys[name], ids[f"{name}_key"] = key["api_key"], key["id"]
    for kind in ("session", "message", "memory", "document"):
        world.kinds[ids[kind]] = world.kinds[ids[f"other_{kind}"]] = kind
    world.kinds[ids["fact"]], world.kinds[ids["entity"]] = "fact", "entity"
    return world


GET = {
    "session": "/v1/sessions/{}",
    "message": "/v1/messages/{}",
    "memory": "/v1/memories/{}",
    "fact": "/v1/facts/{}",
    "document": "/v1/documents/{}",
    "entity": "/v1/entities/{}",
}
LISTS = {"session": "/v1/sessions", "memory": "/v1/memories", "fact": "/v1/facts", "document": "/v1/documents"}
ALL_TYPES = ["messages", "memories", "facts", "entities", "chunks", "documents"]


async def _seen(w: World, client: httpx.AsyncClient) -> dict[str, set[str]]:
    """Which of Alice's rows each read route shows this client."""
    alice = set(w.kinds)
    seen: dict[str, set[str]] = {}
    seen["get"] = {i for i, kind in w.kinds.items() if (await client.get(GET[kind].format(i))).status_code == 200}
    listed: set[str] = set()
    for path in LISTS.values():
        r = await client.get(path)
        assert r.status_code == 200, r.text
        listed |= {row["id"] for row in r.json()["data"]}
    seen["list"] = listed & alice
    r = await client.post("/v1/search", json={"query": "Alice Zorbank account", "types": ALL_TYPES, "top_k": 50})
    assert r.status_code == 200, r.text
    hits = r.json()["results"]
    seen["search"] = ({h["id"] for h in hits} | {h["document_id"] for h in hits if h.get("document_id")}) & alice
    context: set[str] = set()
    for body in ({"user_id": w.ids["alice"]}, {"session_id": w.ids["session"]}):
        r = await client.post("/v1/context", json={**body, "token_budget": 2000})
        if r.status_code == 200:
            context |= {cite["id"] for cite in r.json()["citations"]}
        else:
            assert r.status_code in (403, 404), r.text
    seen["context"] = context & alice
    r = await client.get(
        "/v1/export", params={"include_embeddings": "false"}
    )  # a user's own data only: never what is shared with them
    assert r.status_code in (200, 403), r.text
    seen["export"] = {i for i in alice if i in r.text} if r.status_code == 200 else set()
    r = await client.get(f"/v1/entities/{w.ids['entity']}/neighbors")
    walked = r.json() if r.status_code == 200 else {"edges": [], "entities": []}
    seen["graph"] = ({e["fact_id"] for e in walked["edges"]} | {e["id"] for e in walked["entities"]}) & alice
    return seen


# What each route can show of each kind (the others it never shows: a list of messages is per session).
SHOWS = {
    "get": {"session", "message", "memory", "fact", "document", "entity"},
    "list": {"session", "memory", "fact", "document"},
    "search": {"message", "memory", "fact", "entity", "document"},
    "context": {"message", "memory", "fact"},
    "graph": {"fact", "entity"},
    "export": set(),
}

# name: (grantee, the grant's body, Alice's rows it must show, by name)
CASES = {
    "team support reads alice's memories tagged account": (
        "support",
        {"grantee_team_id": "support", "resource": "memories", "owner_user_id": "alice", "tags": ["account"]},
        {"memory"},
    ),
    "victor reads one session of alice's": (
        "victor",
        {"grantee_user_id": "victor", "resource": "sessions", "session_id": "session"},
        {"session", "message"},
    ),
    "the helper agent reads alice's facts": (
        "helper",
        {"grantee_agent_id": "helper", "resource": "facts", "owner_user_id": "alice"},
        {"fact", "entity"},
    ),
    "victor's key reads documents tagged account": (
        "victor",
        {"grantee_key_id": "victor_key", "resource": "documents", "tags": ["account"]},
        {"document"},
    ),
}


def _named(w: World, body: dict[str, Any]) -> dict[str, Any]:
    return {k: w.ids[v] if k.endswith("_id") else v for k, v in body.items()}


def _expected(w: World, names: set[str]) -> dict[str, set[str]]:
    shown = {w.ids[name] for name in names}
    return {route: {i for i in shown if w.kinds[i] in kinds} for route, kinds in SHOWS.items()}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_grant_shows_exactly_its_rows_to_exactly_its_grantee(app, world: World, case: str) -> None:  # type: ignore[no-untyped-def]
    grantee, body, names = CASES[case]
    nothing = {route: set() for route in SHOWS}
    clients = {name: client_for(app, key) for name, key in world.keys.items()}
    assert await _seen(world, clients[grantee]) == nothing
    made = await world.org.client.post("/v1/grants", json=_named(world, body))
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "active"
    for name, client in clients.items():
        assert await _seen(world, client) == (_expected(world, names) if name == grantee else nothing), name
    revoked = await world.org.client.delete(f"/v1/grants/{made.json()['id']}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert await _seen(world, clients[grantee]) == nothing  # closed at the next request
    for client in clients.values():
        await client.aclose()


async def test_read_grants_change_nothing_and_write_grants_do(app, world: World) -> None:  # type: ignore[no-untyped-def]
    """A read grant lets its grantee see a row, never change it; a write grant lets it change the rows it
    reaches and write new ones for their owner ("agent A writes procedural memories for every user")."""
    c, ids = world.org.client, world.ids
    read = await c.post("/v1/grants", json={"grantee_agent_id": ids["helper"], "resource": "memories"})
    async with client_for(app, world.keys["helper"]) as helper:
        assert (await helper.get(f"/v1/memories/{ids['memory']}")).status_code == 200
        for method, path, body in (
            ("PATCH", f"/v1/memories/{ids['memory']}", {"content": "changed"}),
            ("POST", f"/v1/memories/{ids['memory']}/state", {"state": "archived"}),
            ("DELETE", f"/v1/memories/{ids['memory']}", None),
        ):
            r = await helper.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.text)
        mine = {"user_id": ids["alice"], "content": "How Alice resets her pin", "type": "procedural"}
        assert (await helper.post("/v1/memories", json=mine)).status_code == 403
        await c.delete(f"/v1/grants/{read.json()['id']}")
        write = await c.post(
            "/v1/grants",
            json={
                "grantee_agent_id": ids["helper"],
                "permission": "write",
                "resource": "memories",
                "memory_type": "procedural",
            },
        )
        assert write.status_code == 201, write.text
        made = await helper.post("/v1/memories", json=mine)
        assert made.status_code == 201, made.text
        assert made.json()["user_id"] == ids["alice"] and made.json()["agent_id"] == ids["helper"]
        other_type = await helper.post("/v1/memories", json={**mine, "type": "fact"})
        assert other_type.status_code == 403
        r = await helper.patch(f"/v1/memories/{made.json()['id']}", json={"content": "How Alice resets it"})
        assert r.status_code == 200
        assert (await helper.patch(f"/v1/memories/{ids['memory']}", json={"content": "x"})).status_code == 404
        await c.delete(f"/v1/grants/{write.json()['id']}")
        assert (await helper.post("/v1/memories", json=mine)).status_code == 403
        # What it wrote names it as its agent: that stays its own.
        assert (await helper.get(f"/v1/memories/{made.json()['id']}")).status_code == 200


async def test_an_expired_grant_is_ignored(app, world: World, database_url: str) -> None:  # type: ignore[no-untyped-def]
    ids = world.ids
    made = await world.org.client.post(
        "/v1/grants", json={"grantee_user_id": ids["victor"], "resource": "memories", "owner_user_id": ids["alice"]}
    )
    async with client_for(app, world.keys["victor"]) as victor:
        assert (await victor.get(f"/v1/memories/{ids['memory']}")).status_code == 200
        with psycopg.connect(database_url) as conn:  # as if its time had come
            conn.execute(
                "UPDATE access_grant SET expires_at = now() - interval '1 second' WHERE id = %s", (made.json()["id"],)
            )
        assert (await victor.get(f"/v1/memories/{ids['memory']}")).status_code == 404
    got = await world.org.client.get(f"/v1/grants/{made.json()['id']}")
    assert got.json()["status"] == "expired"
    listed = await world.org.client.get("/v1/grants", params={"grantee_user_id": ids["victor"]})
    assert made.json()["id"] not in {g["id"] for g in listed.json()["data"]}
    listed = await world.org.client.get(
        "/v1/grants", params={"grantee_user_id": ids["victor"], "include_inactive": True}
    )
    assert made.json()["id"] in {g["id"] for g in listed.json()["data"]}


async def test_a_strict_team_refuses_grants_and_makes_its_grants_inert(app, world: World) -> None:  # type: ignore[no-untyped-def]
    c, ids = world.org.client, world.ids
    into_sales = {"grantee_user_id": ids["victor"], "resource": "memories", "owner_user_id": ids["alice"]}
    out_of_support = {"grantee_team_id": ids["support"], "resource": "memories", "owner_user_id": ids["alice"]}
    made = await c.post("/v1/grants", json=into_sales)
    async with client_for(app, world.keys["victor"]) as victor:
        assert (await victor.get(f"/v1/memories/{ids['memory']}")).status_code == 200
        assert (await c.patch(f"/v1/teams/{ids['sales']}", json={"isolation": "strict"})).json()[
            "isolation"
        ] == "strict"
        try:
            assert (await victor.get(f"/v1/memories/{ids['memory']}")).status_code == 404  # inert at once
            body = assert_problem(await c.post("/v1/grants", json=into_sales), 409)
            assert "'sales'" in str(body["detail"]) and "strict" in str(body["detail"])
            # Nor does a grant without an owner reach Alice's rows now.
            wide = await c.post("/v1/grants", json={**into_sales, "owner_user_id": None})
            assert wide.status_code == 201
            assert (await victor.get(f"/v1/memories/{ids['memory']}")).status_code == 404
            await c.delete(f"/v1/grants/{wide.json()['id']}")
        finally:
            await c.patch(f"/v1/teams/{ids['sales']}", json={"isolation": "shared"})
        assert (await victor.get(f"/v1/memories/{ids['memory']}")).status_code == 200  # shared again
    await c.delete(f"/v1/grants/{made.json()['id']}")
    # Out of a strict team: grants held by it, or by its members, are refused too; a strict app likewise.
    assert (await c.patch(f"/v1/teams/{ids['support']}", json={"isolation": "strict"})).status_code == 200
    try:
        assert_problem(await c.post("/v1/grants", json=out_of_support), 409)
    finally:
        await c.patch(f"/v1/teams/{ids['support']}", json={"isolation": "shared"})
    vault = (await c.post("/v1/apps", json={"name": "vault", "isolation": "strict"})).json()
    assert vault["isolation"] == "strict"
    assert_problem(await c.post("/v1/grants", json={**into_sales, "app_id": vault["id"]}), 409)
    assert (await c.get(f"/v1/teams/{ids['support']}")).json()["isolation"] == "shared"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"resource": "memories"}, 422),  # no grantee
        ({"resource": "memories", "grantee_team_id": "support", "grantee_user_id": "victor"}, 422),  # two
        ({"resource": "facts", "grantee_user_id": "victor", "tags": ["account"]}, 422),  # facts have no tags
        ({"resource": "sessions", "grantee_user_id": "victor", "memory_type": "fact"}, 422),
        ({"resource": "memories", "grantee_user_id": "victor", "repository_id": "document"}, 422),
        ({"resource": "memories", "grantee_user_id": "victor", "permission": "own"}, 422),
        ({"resource": "memories", "grantee_user_id": "victor", "expires_at": "2001-01-01T00:00:00Z"}, 422),
        ({"resource": "memories", "grantee_user_id": "victor", "owner_user_id": "nobody"}, 404),
        ({"resource": "memories", "grantee_key_id": "org_key"}, 409),  # an unbound key sees everything already
    ],
)
async def test_bad_grants_are_refused_by_name(world: World, body: dict[str, Any], status: int) -> None:
    ids = {**world.ids, "nobody": str(uuid.uuid4())}
    if "org_key" not in ids:
        keys = (await world.org.client.get("/v1/keys")).json()["data"]
        ids["org_key"] = next(k["id"] for k in keys if not (k["team_id"] or k["user_id"] or k["agent_id"]))
    sent = {k: ids.get(v, v) if k.endswith("_id") else v for k, v in body.items()}
    problem = assert_problem(await world.org.client.post("/v1/grants", json=sent), status)
    assert problem["detail"]


async def test_grants_stay_inside_their_organization(app, world: World, make_org: OrgFactory) -> None:  # type: ignore[no-untyped-def]
    """Another org's admin gets 404 for this org's grant and for naming this org's ids in a grant; a
    grant of its own never reaches this org's rows (its grantee's key is of its own org)."""
    ids = world.ids
    made = await world.org.client.post("/v1/grants", json={"grantee_user_id": ids["victor"], "resource": "memories"})
    other = await make_org()
    for method in ("GET", "PATCH", "DELETE"):
        r = await other.client.request(
            method, f"/v1/grants/{made.json()['id']}", json={} if method == "PATCH" else None
        )
        assert_problem(r, 404)
    assert_problem(
        await other.client.post("/v1/grants", json={"grantee_user_id": ids["victor"], "resource": "memories"}), 404
    )
    bob = (await other.client.post("/v1/users", json={"external_id": "bob"})).json()
    key = (await other.client.post("/v1/keys", json={"name": "bob", "user_id": bob["id"]})).json()["api_key"]
    assert_problem(
        await other.client.post(
            "/v1/grants", json={"grantee_user_id": bob["id"], "resource": "memories", "owner_user_id": ids["alice"]}
        ),
        404,
    )
    wide = await other.client.post("/v1/grants", json={"grantee_user_id": bob["id"], "resource": "memories"})
    assert wide.status_code == 201
    async with client_for(app, key) as as_bob:
        assert (await as_bob.get(f"/v1/memories/{ids['memory']}")).status_code == 404
        found = (await as_bob.post("/v1/search", json={"query": "Alice Zorbank account"})).json()["results"]
        assert found == []
    assert (await other.client.get("/v1/grants")).json()["data"][0]["id"] == wide.json()["id"]
    await world.org.client.delete(f"/v1/grants/{made.json()['id']}")


async def test_grant_changes_are_audited(world: World) -> None:
    c, ids = world.org.client, world.ids
    made = (await c.post("/v1/grants", json={"grantee_user_id": ids["victor"], "resource": "facts"})).json()
    changed = await c.patch(f"/v1/grants/{made['id']}", json={"expires_at": "2999-01-01T00:00:00Z"})
    assert changed.json()["expires_at"].startswith("2999-01-01")
    await c.delete(f"/v1/grants/{made['id']}")
    assert (await c.delete(f"/v1/grants/{made['id']}")).json()["status"] == "revoked"  # again: no change
    assert_problem(await c.patch(f"/v1/grants/{made['id']}", json={"description": "x"}), 409)
    log = (await c.get("/v1/audit", params={"entity_id": made["id"]})).json()["data"]
    assert sorted(e["action"] for e in log) == ["grant.created", "grant.revoked", "grant.updated"]


async def test_deleting_or_erasing_what_a_grant_names_removes_the_grant(world: World) -> None:
    c, ids = world.org.client, world.ids
    team = (await c.post("/v1/teams", json={"name": "short-lived"})).json()["id"]
    app_ = (await c.post("/v1/apps", json={"name": "short-lived"})).json()["id"]
    user = (await c.post("/v1/users", json={"external_id": "short-lived"})).json()["id"]
    made = [
        (await c.post("/v1/grants", json=body)).json()["id"]
        for body in (
            {"grantee_team_id": team, "resource": "memories"},
            {"grantee_user_id": ids["victor"], "resource": "memories", "app_id": app_},
            {"grantee_user_id": user, "resource": "facts"},
            {"grantee_user_id": ids["victor"], "resource": "facts", "owner_user_id": user},
        )
    ]
    assert (await c.delete(f"/v1/teams/{team}")).status_code == 204
    assert (await c.delete(f"/v1/apps/{app_}")).status_code == 204
    assert (await c.post(f"/v1/users/{user}/erase")).status_code == 200
    for grant_id in made:  # gone, not widened (a grant whose app was cleared would share every app's rows)
        assert_problem(await c.get(f"/v1/grants/{grant_id}"), 404)

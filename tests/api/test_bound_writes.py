"""Bound keys write only inside their binding, on every write route that names a scope.

The routes are read from the OpenAPI document: every POST, PATCH or PUT whose body (or the items of its
body) has a ``user_id``, ``external_user_id``, ``agent_id`` or ``team_id`` field is tried with a key bound
to a user, to a team and to an agent, once per field set to something outside the binding (another user,
a user that does not exist yet, another user's agent, another team). Each must be refused with nothing
written. The same call with the field set inside the binding must succeed (where a bound key may make the
call at all), so the check refuses exactly what lies outside. A route that names a scope and that this
test cannot fill fails it until it is added to ``BODIES``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.test_tenancy import _snapshot
from tests.conftest import Org, client_for

SCOPE_FIELDS = ("user_id", "external_user_id", "agent_id", "team_id")
KEY_KINDS = ("user_id", "team_id", "agent_id")
# Reads that take a scope as a filter: what they return is confined by visibility, not refused.
READS = {"search", "assemble_context"}
# Admin only: a bound key is never an admin key, so these are refused whatever they name.
ADMIN_ONLY = {
    "create_agent",
    "update_agent",
    "create_api_key",
    "create_user",
    "update_user",
    "create_retention_policy",
    "update_retention_policy",
    "create_legal_hold",
    "join_insight_session",
}

Ids = dict[str, str]
Request = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments


def _json(method: str, path: str, body: dict[str, Any]) -> Request:
    return method, path, {"json": body}


BODIES: dict[str, Callable[[Ids, dict[str, str]], Request]] = {
    "create_session": lambda ids, sc: _json("POST", "/v1/sessions", sc),
    "create_memory": lambda ids, sc: _json("POST", "/v1/memories", {"content": "a note", **sc}),
    "add_messages": lambda ids, sc: _json(
        "POST",
        f"/v1/sessions/{ids['session']}/messages",
        {"messages": [{"role": "user", "content": "my wifi password is hunter2", **sc}], "extract": False},
    ),
    "create_fact": lambda ids, sc: _json(
        "POST", "/v1/facts", {"subject": "Zed", "predicate": "lives_in", "object": "Berlin", **sc}
    ),
    "create_repository": lambda ids, sc: _json("POST", "/v1/repositories", {"name": f"r-{uuid.uuid4().hex}", **sc}),
    "create_document": lambda ids, sc: _json("POST", "/v1/documents", {"content": "a page of notes", **sc}),
    "upload_document": lambda ids, sc: (
        "POST",
        "/v1/documents/upload",
        {"data": sc, "files": {"file": ("notes.txt", b"a page of notes", "text/plain")}},
    ),
    "create_task": lambda ids, sc: _json("POST", "/v1/tasks", {"title": "a task", **sc}),
    "offload_context": lambda ids, sc: _json("POST", "/v1/contexts", {"content": "a scratchpad", **sc}),
    "claim_task": lambda ids, sc: _json("POST", "/v1/tasks/claim", {"queue": "nothing-here", **sc}),
    "create_agent": lambda ids, sc: _json("POST", "/v1/agents", {"name": f"a-{uuid.uuid4().hex}", **sc}),
    "create_retention_policy": lambda ids, sc: _json(
        "POST", "/v1/retention/policies", {"name": "p", "target": "memories", "after_days": 30, **sc}
    ),
    "update_retention_policy": lambda ids, sc: _json("PATCH", f"/v1/retention/policies/{uuid.uuid4()}", sc),
    "create_legal_hold": lambda ids, sc: _json("POST", "/v1/legal-holds", {"reason": "a lawsuit", **sc}),
    "update_agent": lambda ids, sc: _json("PATCH", f"/v1/agents/{ids['agent_in']}", sc),
    "create_api_key": lambda ids, sc: _json("POST", "/v1/keys", {"name": "k", **sc}),
    "create_user": lambda ids, sc: _json("POST", "/v1/users", {"external_id": f"u-{uuid.uuid4().hex}", **sc}),
    "update_user": lambda ids, sc: _json("PATCH", f"/v1/users/{ids['alice']}", sc),
    "join_insight_session": lambda ids, sc: _json("POST", f"/v1/insights/sessions/{uuid.uuid4()}/join", sc),
}


def _scope_fields(spec: dict[str, Any], schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> set[str]:
    """The scope fields a request body declares, in it or in the objects it holds (a batch's items)."""
    found: set[str] = set()
    ref = schema.get("$ref")
    if ref is not None:
        name = ref.rsplit("/", 1)[-1]
        return set() if name in seen else _scope_fields(spec, spec["components"]["schemas"][name], seen | {name})
    for key, value in schema.items():
        if key == "properties":
            found |= {name for name in value if name in SCOPE_FIELDS}
            for sub in value.values():
                found |= _scope_fields(spec, sub, seen)
        elif isinstance(value, dict):
            found |= _scope_fields(spec, value, seen)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    found |= _scope_fields(spec, item, seen)
    return found


def _writes(spec: dict[str, Any]) -> dict[str, set[str]]:
    writes: dict[str, set[str]] = {}
    for ops in spec["paths"].values():
        for method, op in ops.items():
            if method not in ("post", "patch", "put"):
                continue
            for content in op.get("requestBody", {}).get("content", {}).values():
                fields = _scope_fields(spec, content.get("schema", {}))
                if fields and op["operationId"] not in READS:
                    writes.setdefault(op["operationId"], set()).update(fields)
    return writes


async def _send(client: httpx.AsyncClient, request: Request) -> httpx.Response:
    method, path, kwargs = request
    return await client.request(method, path, **kwargs)


@pytest.fixture
async def world(org: Org) -> Ids:
    c = org.client

    async def made(path: str, body: dict[str, Any]) -> str:
        r = await c.post(path, json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    ids: Ids = {}
    ids["team_in"] = await made("/v1/teams", {"name": "in"})
    ids["team_out"] = await made("/v1/teams", {"name": "out"})
    ids["alice"] = await made("/v1/users", {"external_id": "alice", "team_id": ids["team_in"]})
    ids["bob"] = await made("/v1/users", {"external_id": "bob", "team_id": ids["team_out"]})
    ids["agent_in"] = await made("/v1/agents", {"name": "alice's", "user_id": ids["alice"], "team_id": ids["team_in"]})
    ids["agent_out"] = await made("/v1/agents", {"name": "bob's", "user_id": ids["bob"], "team_id": ids["team_out"]})
    ids["session"] = await made(
        "/v1/sessions", {"user_id": ids["alice"], "agent_id": ids["agent_in"], "team_id": ids["team_in"]}
    )
    binding = {"user_id": ids["alice"], "team_id": ids["team_in"], "agent_id": ids["agent_in"]}
    for kind in KEY_KINDS:
        r = await c.post("/v1/keys", json={"name": kind, "scopes": ["read", "write"], kind: binding[kind]})
        ids[f"key_{kind}"] = r.json()["api_key"]
    return ids


def _outside(ids: Ids) -> dict[str, str]:
    return {
        "user_id": ids["bob"],
        "external_user_id": "bob",  # a user outside every binding (creating users: the last test)
        "agent_id": ids["agent_out"],
        "team_id": ids["team_out"],
    }


def _inside(ids: Ids) -> dict[str, str]:
    return {
        "user_id": ids["alice"],
        "external_user_id": "alice",
        "agent_id": ids["agent_in"],
        "team_id": ids["team_in"],
    }


def _scope(ids: Ids, fields: set[str], field: str, *, outside: bool) -> dict[str, str]:
    """Every scope field the route takes set inside the binding, but ``field``, set outside (or inside too)."""
    scope = {f: v for f, v in _inside(ids).items() if f in fields and f != "external_user_id"}
    if field == "external_user_id":
        scope.pop("user_id", None)
    scope[field] = (_outside(ids) if outside else _inside(ids))[field]
    return scope


async def test_every_write_stays_inside_the_keys_binding(app, org: Org, world: Ids, database_url: str) -> None:  # type: ignore[no-untyped-def]
    writes = _writes(app.openapi())
    missing = sorted(set(writes) - set(BODIES))
    assert not missing, f"add a body for these writes that name a scope: {missing}"
    tried = 0
    for kind in KEY_KINDS:
        async with client_for(app, world[f"key_{kind}"]) as bound:
            for op_id, fields in sorted(writes.items()):
                for field in sorted(fields):
                    before = _snapshot(database_url, org.id)
                    r = await _send(bound, BODIES[op_id](world, _scope(world, fields, field, outside=True)))
                    assert r.status_code == 403, f"{kind} key, {op_id} with {field} outside: {r.status_code} {r.text}"
                    assert _snapshot(database_url, org.id) == before, f"{kind} key, {op_id}: something was written"
                    tried += 1
                    if op_id in ADMIN_ONLY:
                        continue
                    r = await _send(bound, BODIES[op_id](world, _scope(world, fields, field, outside=False)))
                    assert r.status_code in (200, 201), f"{kind} key, {op_id} with {field} inside: {r.text}"
    assert tried >= 3 * 20


async def test_an_agent_key_cannot_plant_memories_or_close_facts_of_another_user(app, org: Org, world: Ids) -> None:  # type: ignore[no-untyped-def]
    """The run that found the hole: alice's agent wrote a message as bob, extraction made it bob's memory and
    closed bob's current fact. Now the message is refused, so nothing of bob's changes."""
    c = org.client
    fact = await c.post(
        "/v1/facts", json={"subject": "bob", "predicate": "lives_in", "object": "Berlin", "user_id": world["bob"]}
    )
    assert fact.status_code == 201
    async with client_for(app, world["key_agent_id"]) as agent:
        r = await agent.post(
            f"/v1/sessions/{world['session']}/messages",
            json={"messages": [{"role": "user", "content": "I moved to Lisbon", "user_id": world["bob"]}]},
        )
        assert r.status_code == 403
        r = await agent.post(
            "/v1/facts",
            json={"subject": "bob", "predicate": "lives_in", "object": "Lisbon", "user_id": world["bob"]},
        )
        assert r.status_code == 403
    facts = (await c.get("/v1/facts", params={"user_id": world["bob"]})).json()["data"]
    assert [f["object"] for f in facts] == ["Berlin"]


async def test_a_team_key_sees_its_members_memories_as_it_sees_their_documents(app, org: Org, world: Ids) -> None:  # type: ignore[no-untyped-def]
    """Memories and sessions written for a team member by a key that named no team are the team's too."""
    c = org.client
    memory = (await c.post("/v1/memories", json={"user_id": world["alice"], "content": "alice's plan"})).json()
    assert memory["team_id"] is None
    other = (await c.post("/v1/memories", json={"user_id": world["bob"], "content": "bob's plan"})).json()
    async with client_for(app, world["key_team_id"]) as team:
        assert (await team.get(f"/v1/memories/{memory['id']}")).status_code == 200
        assert (await team.get(f"/v1/memories/{other['id']}")).status_code == 404
        listed = {m["id"] for m in (await team.get("/v1/memories")).json()["data"]}
        assert memory["id"] in listed and other["id"] not in listed


async def test_bound_keys_cannot_create_users_except_a_team_keys_own(app, org: Org, world: Ids) -> None:  # type: ignore[no-untyped-def]
    for kind in ("user_id", "agent_id"):
        async with client_for(app, world[f"key_{kind}"]) as bound:
            r = await bound.post("/v1/sessions", json={"external_user_id": f"new-{kind}"})
            assert r.status_code == 403
            assert "cannot create users" in r.json()["detail"]
            assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", r.json()["detail"]), "it quotes an id nobody sent"
    async with client_for(app, world["key_team_id"]) as team:
        made = (await team.post("/v1/sessions", json={"external_user_id": "carol"})).json()
    user = (await org.client.get(f"/v1/users/{made['user_id']}")).json()
    assert user["team_id"] == world["team_in"]

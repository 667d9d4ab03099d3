"""Offloaded contexts over HTTP: the three ways in (JSON, raw bytes, multipart), byte-exact restores, one copy
per scope, the size limit by name, expiry, search and context assembly, another org and bound keys."""

from __future__ import annotations

import hashlib
import random
import uuid

import pytest

from engramdb import limits
from engramdb.services.contexts import compression
from engramdb.storage.database import Database
from tests.conftest import Org, assert_problem, client_for

NOTES = (
    "Deployment notes for the billing service. The canary in eu-west-2 failed its health check twice. "
    "We rolled back to build 4411 and opened incident INC-2093. Next step: compare the connection pool "
    "settings between builds 4411 and 4412 before trying the canary again."
)


def _binary(size: int, seed: int = 7) -> bytes:
    """Half random (incompressible), half repetitive, with every byte value (NUL included) present."""
    rng = random.Random(seed)
    noise = rng.randbytes(size // 2)
    pattern = bytes(range(256)) * (size // 512 + 1)
    return noise + pattern[: size - len(noise)]


async def _offload(org: Org, status: int = 201, **body: object) -> dict:  # type: ignore[type-arg]
    r = await org.client.post("/v1/contexts", json={"content": NOTES, **body})
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_text_round_trip_with_sizes_summary_and_audit(org: Org) -> None:
    made = await _offload(org, title="Billing deploy", tags=["ops"], metadata={"run": 3})
    ctx = made["context"]
    assert made["action"] == "created"
    assert ctx["original_bytes"] == len(NOTES.encode())
    assert ctx["stored_bytes"] > 0 and ctx["compression"] == "zstd" and ctx["compression_level"] == compression.LEVEL
    assert ctx["compression_ratio"] == pytest.approx(ctx["original_bytes"] / ctx["stored_bytes"], rel=1e-5)
    assert ctx["content_sha256"] == hashlib.sha256(NOTES.encode()).hexdigest()
    assert ctx["is_text"] and ctx["content_type"] == "text/plain; charset=utf-8"
    assert ctx["summary_source"] == "extractive" and ctx["summary"].startswith("Billing deploy\nDeployment notes")
    got = await org.client.get(f"/v1/contexts/{ctx['id']}")
    assert got.status_code == 200 and got.json() == ctx
    restored = await org.client.get(f"/v1/contexts/{ctx['id']}/content")
    assert restored.status_code == 200
    assert restored.content == NOTES.encode()
    assert restored.headers["content-type"] == "text/plain; charset=utf-8"
    assert restored.headers["etag"] == f'"{ctx["content_sha256"]}"'
    audit = (await org.client.get("/v1/audit", params={"entity_id": ctx["id"]})).json()["data"]
    assert [row["action"] for row in audit] == ["context.created"]


async def test_multi_mib_binary_round_trips_byte_exact_as_the_raw_body(org: Org) -> None:
    data = _binary(5 * 1024 * 1024 + 17)
    r = await org.client.post(
        "/v1/contexts",
        content=data,
        headers={"Content-Type": "application/x-tar"},
        params={"title": "workspace snapshot", "filename": "work space.tar", "tags": ["a", "b"]},
    )
    assert r.status_code == 201, r.text
    ctx = r.json()["context"]
    assert (ctx["original_bytes"], ctx["content_type"], ctx["is_text"]) == (len(data), "application/x-tar", False)
    assert ctx["tags"] == ["a", "b"] and ctx["summary_source"] == "described"
    assert 1.5 < ctx["compression_ratio"] < 2.5  # the random half does not shrink, the pattern half does
    restored = await org.client.get(f"/v1/contexts/{ctx['id']}/content")
    assert restored.content == data
    assert restored.headers["content-length"] == str(len(data))
    assert "filename*=UTF-8''work%20space.tar" in restored.headers["content-disposition"]


async def test_multipart_upload_keeps_nul_bytes_and_takes_the_part_type_and_name(org: Org) -> None:
    data = b"\x00\x01tool output\x00\xff" * 1000
    r = await org.client.post(
        "/v1/contexts",
        files={"file": ("out.bin", data, "application/vnd.engram.test")},
        data={"tags": "x,y", "metadata": '{"tool": "grep"}'},
    )
    assert r.status_code == 201, r.text
    ctx = r.json()["context"]
    assert (ctx["filename"], ctx["content_type"], ctx["tags"]) == ("out.bin", "application/vnd.engram.test", ["x", "y"])
    assert ctx["metadata"] == {"tool": "grep"}
    assert (await org.client.get(f"/v1/contexts/{ctx['id']}/content")).content == data


async def test_same_content_is_stored_once_per_scope(org: Org) -> None:
    first = (await _offload(org, external_user_id="dedup-a"))["context"]
    again = await _offload(org, 200, external_user_id="dedup-a", title="another title")
    assert again["action"] == "unchanged"
    assert again["context"]["id"] == first["id"] and again["context"]["title"] is None
    other_user = (await _offload(org, external_user_id="dedup-b"))["context"]
    session = (await org.client.post("/v1/sessions", json={"external_user_id": "dedup-a"})).json()["id"]
    in_session = (await _offload(org, session_id=session))["context"]
    assert len({first["id"], other_user["id"], in_session["id"]}) == 3
    assert in_session["user_id"] == first["user_id"]  # the session's user, filled in
    listed = (await org.client.get("/v1/contexts", params={"external_user_id": "dedup-a"})).json()["data"]
    assert {c["id"] for c in listed} == {first["id"], in_session["id"]}


async def test_content_over_the_limit_is_refused_by_name(org: Org) -> None:
    over = b"x" * (limits.MAX_CONTEXT_BYTES + 1)
    r = await org.client.post("/v1/contexts", content=over, headers={"Content-Type": "text/plain"})
    assert "MAX_CONTEXT_BYTES" in str(assert_problem(r, 413)["detail"])
    # As JSON: more than the limit in UTF-8 bytes, though fewer characters.
    r = await org.client.post("/v1/contexts", json={"content": "é" * (limits.MAX_CONTEXT_BYTES // 2 + 1)})
    assert "MAX_CONTEXT_BYTES" in str(assert_problem(r, 413)["detail"])
    assert (await org.client.get("/v1/contexts")).json()["data"] == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"content": "x", "ttl_s": 60, "expires_at": "2999-01-01T00:00:00Z"}, "body"),
        ({"content": "x", "expires_at": "2001-01-01T00:00:00Z"}, None),
        ({"content": "x", "content_type": "not a type"}, "body/content_type"),
        ({"content": "x", "colour": "red"}, "body/colour"),
    ],
)
async def test_bad_offloads_are_422(org: Org, body: dict[str, object], where: str | None) -> None:
    problem = assert_problem(await org.client.post("/v1/contexts", json=body), 422)
    if where is not None:
        assert any(str(e["location"]).startswith(where) for e in problem["errors"])  # type: ignore[attr-defined]


async def test_query_fields_with_a_json_body_are_refused(org: Org) -> None:
    r = await org.client.post("/v1/contexts", json={"content": "x"}, params={"title": "t"})
    assert "title" in str(assert_problem(r, 422)["detail"])


async def test_expired_contexts_are_hidden_and_stored_afresh(org: Org, db: Database) -> None:
    ctx = (await _offload(org, ttl_s=3600))["context"]
    assert ctx["expires_at"] is not None
    async with db.system() as conn:
        await conn.exec_driver_sql(
            "UPDATE offloaded_context SET expires_at = now() - interval '1 second' WHERE id = %s", (ctx["id"],)
        )
    for path in (f"/v1/contexts/{ctx['id']}", f"/v1/contexts/{ctx['id']}/content"):
        assert_problem(await org.client.get(path), 404)
    assert (await org.client.get("/v1/contexts")).json()["data"] == []
    listed = (await org.client.get("/v1/contexts", params={"include_expired": "true"})).json()["data"]
    assert [c["id"] for c in listed] == [ctx["id"]]
    found = await org.client.post("/v1/search", json={"query": "billing canary rollback", "types": ["contexts"]})
    assert found.json()["results"] == []
    fresh = (await _offload(org))["context"]
    assert fresh["id"] != ctx["id"]
    everything = (await org.client.get("/v1/contexts", params={"include_expired": "true"})).json()["data"]
    assert [c["id"] for c in everything] == [fresh["id"]]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
async def test_search_finds_contexts_alongside_everything_else(org: Org, mode: str) -> None:
    ctx = (await _offload(org, external_user_id="searcher"))["context"]
    await org.client.post("/v1/memories", json={"external_user_id": "searcher", "content": "Likes green tea."})
    body = {"query": "why did the billing canary fail", "types": ["memories", "contexts"], "mode": mode}
    results = (await org.client.post("/v1/search", json=body)).json()["results"]
    top = results[0]
    assert (top["type"], top["id"]) == ("context", ctx["id"])
    assert top["content"] == ctx["summary"] and top["original_bytes"] == ctx["original_bytes"]
    default = (await org.client.post("/v1/search", json={"query": "billing canary"})).json()["results"]
    assert all(r["type"] != "context" for r in default)  # asked for by name


async def test_context_assembly_cites_an_offloaded_context(org: Org) -> None:
    ctx = (await _offload(org, external_user_id="assembler"))["context"]
    body = {
        "external_user_id": "assembler",
        "query": "billing canary incident",
        "sections": ["memories", "contexts"],
    }
    r = await org.client.post("/v1/context", json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert {"kind": "context", "id": ctx["id"], "section": "contexts"} in answer["citations"]
    assert f"[context:{ctx['id']}]" in answer["context"]


async def test_another_org_gets_404_for_every_context_route(make_org) -> None:  # type: ignore[no-untyped-def]
    a, b = await make_org(), await make_org()
    ctx = (await _offload(a))["context"]
    for method, path in (
        ("GET", f"/v1/contexts/{ctx['id']}"),
        ("GET", f"/v1/contexts/{ctx['id']}/content"),
        ("DELETE", f"/v1/contexts/{ctx['id']}"),
    ):
        assert_problem(await b.client.request(method, path), 404)
    assert (await b.client.get("/v1/contexts")).json()["data"] == []
    same = await _offload(b)  # the same content in another org is another context
    assert same["action"] == "created" and same["context"]["id"] != ctx["id"]
    assert (await a.client.get(f"/v1/contexts/{ctx['id']}/content")).content == NOTES.encode()


async def test_a_user_bound_key_offloads_for_and_sees_only_its_user(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    alice = (await org.client.post("/v1/users", json={"external_id": "alice"})).json()["id"]
    bob = (await org.client.post("/v1/users", json={"external_id": "bob"})).json()["id"]
    key = await org.client.post("/v1/keys", json={"name": "alice", "scopes": ["read", "write"], "user_id": alice})
    bobs = (await _offload(org, user_id=bob, title="bob's"))["context"]
    async with client_for(app, key.json()["api_key"]) as as_alice:
        mine = (await _offload_with(as_alice, 201))["context"]
        assert mine["user_id"] == alice
        assert_problem(await as_alice.post("/v1/contexts", json={"content": "x", "user_id": bob}), 403)
        for path in (f"/v1/contexts/{bobs['id']}", f"/v1/contexts/{bobs['id']}/content"):
            assert_problem(await as_alice.get(path), 404)
        assert_problem(await as_alice.delete(f"/v1/contexts/{bobs['id']}"), 404)
        assert [c["id"] for c in (await as_alice.get("/v1/contexts")).json()["data"]] == [mine["id"]]
        found = (await as_alice.post("/v1/search", json={"query": "billing canary", "types": ["contexts"]})).json()
        assert [r["id"] for r in found["results"]] == [mine["id"]]
        assert (await as_alice.delete(f"/v1/contexts/{mine['id']}")).status_code == 204
    assert (await org.client.get(f"/v1/contexts/{bobs['id']}")).status_code == 200


async def _offload_with(client, status: int) -> dict:  # type: ignore[no-untyped-def, type-arg]
    r = await client.post("/v1/contexts", json={"content": NOTES})
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_it_goes_with_its_session_and_stays_when_its_team_goes(org: Org) -> None:
    team = (await org.client.post("/v1/teams", json={"name": "night shift"})).json()["id"]
    in_team = (await _offload(org, team_id=team))["context"]
    session = (await org.client.post("/v1/sessions", json={"team_id": team})).json()["id"]
    in_session = (await _offload(org, session_id=session))["context"]
    assert in_session["team_id"] == team
    assert (await org.client.delete(f"/v1/sessions/{session}")).status_code == 204
    assert_problem(await org.client.get(f"/v1/contexts/{in_session['id']}"), 404)
    assert (await org.client.delete(f"/v1/teams/{team}")).status_code == 204
    kept = (await org.client.get(f"/v1/contexts/{in_team['id']}")).json()
    assert kept["team_id"] is None


async def test_erasing_a_user_or_a_session_erases_their_contexts_on_the_receipt(org: Org) -> None:
    user = (await _offload(org, external_user_id="erased"))["context"]
    session = (await org.client.post("/v1/sessions", json={})).json()["id"]
    in_session = (await _offload(org, session_id=session))["context"]
    other = (await _offload(org, external_user_id="stays"))["context"]
    receipt = (await org.client.post(f"/v1/users/{user['user_id']}/erase")).json()
    assert receipt["counts"]["offloaded_context"] == 1
    receipt = (await org.client.post(f"/v1/sessions/{session}/erase")).json()
    assert receipt["counts"]["offloaded_context"] == 1
    for gone in (user, in_session):
        assert_problem(await org.client.get(f"/v1/contexts/{gone['id']}"), 404)
    assert (await org.client.get(f"/v1/contexts/{other['id']}")).status_code == 200


async def test_pages_and_filters(org: Org) -> None:
    task = (await org.client.post("/v1/tasks", json={"title": "summarize logs"})).json()["id"]
    made = [(await _offload(org, content=f"log part {i}", task_id=task))["context"]["id"] for i in range(3)]
    other = (await _offload(org, content="unrelated"))["context"]["id"]
    first = (await org.client.get("/v1/contexts", params={"task_id": task, "limit": 2})).json()
    second = (await org.client.get("/v1/contexts", params={"task_id": task, "cursor": first["next_cursor"]})).json()
    assert [c["id"] for c in first["data"] + second["data"]] == made[::-1]
    assert second["next_cursor"] is None
    assert other not in {c["id"] for c in first["data"] + second["data"]}
    assert_problem(await org.client.get("/v1/contexts", params={"task": task}), 422)
    assert_problem(await org.client.post("/v1/contexts", json={"content": "x", "task_id": str(uuid.uuid4())}), 404)

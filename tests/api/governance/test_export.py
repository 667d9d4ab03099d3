"""Export and import through the API: an organization built as users build one (messages extracted by the
worker, memories changed so they have history, facts invalidated, documents chunked), exported, imported
elsewhere or after its user was deleted, and compared: the same searches give the same ids, order and
scores, the same reads give the same rows."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import string
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from engramdb import limits
from engramdb.services.governance import export, import_
from engramdb.services.governance.export import KINDS
from engramdb.services.maintenance import backfill
from tests.conftest import Org, OrgFactory, assert_problem, client_for
from tests.jobs.conftest import worker  # noqa: F401  (the extraction worker, for this module too)

pytestmark = pytest.mark.usefixtures("worker")

QUERIES = [
    {"query": "where does Alice live now?"},
    {"query": "Alice's sister in Boston", "types": ["messages", "memories", "facts", "entities"]},
    {"query": "green tea or coffee", "types": ["memories"], "top_k": 5},
    {"query": "how to install the telescope", "types": ["chunks", "documents"]},
    {"query": "Acme Labs", "types": ["messages", "memories", "facts", "entities", "chunks", "documents"]},
    {"query": "painting landscapes", "mode": "keyword"},
    {"query": "sailing on the weekend", "mode": "vector", "types": ["messages", "memories"]},
    {"query": "where does Alice live now?", "external_user_id": "alice", "types": ["memories", "facts"]},
]
HANDBOOK = (
    "# Handbook\n\n## Telescope\n\nTo install the telescope, mount it on the tripod.\n\n"
    "## Coffee\n\nThe machine is upstairs."
)
GUIDE = "# Alice's guide\n\n## Painting\n\nStart with the sky, then the hills.\n\n## Travel\n\nPorto has great light."


@dataclass
class Source:
    org: Org
    alice: dict[str, Any]
    bob: dict[str, Any]
    export: bytes  # the whole organization, with vectors


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _build(org: Org) -> tuple[dict[str, Any], dict[str, Any]]:
    c = org.client
    team = await _ok(await c.post("/v1/teams", json={"name": "research"}), 201)
    alice = await _ok(
        await c.post("/v1/users", json={"external_id": "alice", "team_id": team["id"], "display_name": "Alice"}), 201
    )
    bob = await _ok(await c.post("/v1/users", json={"external_id": "bob"}), 201)
    agent = await _ok(await c.post("/v1/agents", json={"name": "helper", "user_id": alice["id"]}), 201)
    app = await _ok(await c.post("/v1/apps", json={"name": "notes"}), 201)
    await _ok(
        await c.post("/v1/categories", json={"name": "stargazing", "description": "astronomy, telescopes, stars"}),
        201,
    )
    await _ok(await c.put("/v1/predicates/works_at", json={"cardinality": "one", "description": "the employer"}))
    session = await _ok(
        await c.post(
            "/v1/sessions",
            json={"user_id": alice["id"], "agent_id": agent["id"], "app_id": app["id"], "title": "catch-up"},
        ),
        201,
    )
    turns = [
        {
            "role": "user",
            "name": "Alice",
            "content": "I moved to Lisbon last month.",
            "occurred_at": "2024-03-01T10:00:00Z",
        },
        {"role": "assistant", "content": "How do you like Lisbon?", "occurred_at": "2024-03-01T10:00:05Z"},
        {
            "role": "user",
            "name": "Alice",
            "content": "My sister Anna lives in Boston. I love painting landscapes.",
            "occurred_at": "2024-03-01T10:01:00Z",
            "tags": ["family"],
        },
        {
            "role": "user",
            "name": "Bob",
            "user_id": bob["id"],
            "content": "Bob here: I go sailing on the weekend.",
            "occurred_at": "2024-03-01T10:02:00Z",
        },
    ]
    r = await c.post(f"/v1/sessions/{session['id']}/messages", params={"wait": "true"}, json={"messages": turns})
    assert (await _ok(r, 201))["job"]["status"] == "succeeded"
    later = {"role": "user", "name": "Alice", "content": "I moved to Porto.", "occurred_at": "2024-09-01T09:00:00Z"}
    r = await c.post(f"/v1/sessions/{session['id']}/messages", params={"wait": "true"}, json={"messages": [later]})
    assert (await _ok(r, 201))["job"]["status"] == "succeeded"

    tea = await _ok(
        await c.post(
            "/v1/memories",
            json={
                "user_id": alice["id"],
                "content": "Alice prefers coffee",
                "type": "preference",
                "tags": ["drinks"],
                "categories": ["food"],
                "importance": 0.7,
                "session_id": session["id"],
            },
        ),
        201,
    )
    await _ok(await c.patch(f"/v1/memories/{tea['id']}", json={"content": "Alice prefers green tea over coffee"}))
    old = await _ok(
        await c.post("/v1/memories", json={"user_id": alice["id"], "content": "Alice owns a telescope"}), 201
    )
    await _ok(await c.patch(f"/v1/memories/{old['id']}", json={"categories": ["stargazing"], "metadata": {"k": 1}}))
    archived = await _ok(
        await c.post("/v1/memories", json={"user_id": alice["id"], "content": "Alice had a cold"}), 201
    )
    await _ok(await c.post(f"/v1/memories/{archived['id']}/state", json={"state": "archived", "reason": "over"}))
    await _ok(await c.post("/v1/memories", json={"user_id": bob["id"], "content": "Bob likes sailing"}), 201)

    fact = {"subject": "Alice", "predicate": "works_at", "object": "Acme Labs", "object_is_entity": True}
    await _ok(await c.post("/v1/facts", json={**fact, "user_id": alice["id"], "single_valued": True}), 201)
    moved = {**fact, "object": "Initech", "valid_from": "2025-01-01T00:00:00Z"}
    await _ok(await c.post("/v1/facts", json={**moved, "user_id": alice["id"], "single_valued": True}), 201)
    await _ok(
        await c.post("/v1/facts", json={"subject": "Acme Labs", "predicate": "located_in", "object": "Lisbon"}), 201
    )

    r = await c.post(
        "/v1/documents",
        json={"content": GUIDE, "path": "guide.md", "tags": ["guide"], "user_id": alice["id"], "metadata": {"v": 2}},
    )
    await _ok(r, 201)
    await _ok(await c.post("/v1/documents", json={"content": HANDBOOK, "path": "handbook.md", "tags": ["org"]}), 201)
    repo = await _ok(await c.post("/v1/repositories", json={"name": "alice-notes", "user_id": alice["id"]}), 201)
    files = [{"path": "notes/stars.md", "content": "# Stars\n\nOrion is visible in winter."}]
    await _ok(await c.post(f"/v1/repositories/{repo['id']}/files", json={"files": files}))
    r = await c.post(f"/v1/users/{alice['id']}/narrative", params={"wait": "true"})
    assert (await _ok(r, 202))["status"] == "succeeded"
    await _settled(c)
    return alice, bob


async def _settled(c: Any) -> None:
    """Wait for the jobs the writes queued (a narrative of Bob's, …): the export must not change under a test."""
    for _ in range(600):
        pending = [
            job
            for status in ("queued", "running")
            for job in (await _ok(await c.get("/v1/jobs", params={"status": status})))["data"]
        ]
        if not pending:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"jobs still pending: {pending}")


@pytest.fixture(scope="module")
async def source(make_org: OrgFactory) -> Source:
    org = await make_org()
    alice, bob = await _build(org)
    r = await org.client.get("/v1/export")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    return Source(org=org, alice=alice, bob=bob, export=r.content)


def _records(body: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and the records of an export; checks it ends with its end record, which it leaves out."""
    header, *records, end = (json.loads(line) for line in body.splitlines())
    assert end == {"kind": "end", "records": len(records)}
    return header, records


async def _import(org: Org, body: bytes) -> httpx.Response:
    return await org.client.post("/v1/import", content=body, headers={"Content-Type": "application/x-ndjson"})


async def _all(client: httpx.AsyncClient, url: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await _ok(
            await client.get(url, params={**params, "limit": 200, **({"cursor": cursor} if cursor else {})})
        )
        out += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


async def _searches(client: httpx.AsyncClient, queries: list[dict[str, Any]] = QUERIES) -> list[list[dict[str, Any]]]:
    return [(await _ok(await client.post("/v1/search", json=q)))["results"] for q in queries]


def _assert_same_results(
    before: list[list[dict[str, Any]]], after: list[list[dict[str, Any]]], tolerance: float = 1e-6
) -> None:
    assert any(before), "the searches found nothing: the comparison would prove nothing"
    for old, new in zip(before, after, strict=True):
        assert [r["id"] for r in new] == [r["id"] for r in old]
        for a, b in zip(old, new, strict=True):
            assert b["score"] == pytest.approx(a["score"], abs=tolerance)
            assert {k: v for k, v in b.items() if k != "score"} == {k: v for k, v in a.items() if k != "score"}


async def _reads(client: httpx.AsyncClient) -> dict[str, Any]:
    """What the API shows of an organization (an admin's view), for before/after comparisons."""
    memories = await _all(client, "/v1/memories", include_expired="true")
    memories += await _all(client, "/v1/memories", state="deleted")
    users = await _all(client, "/v1/users")
    out: dict[str, Any] = {
        "memories": memories,
        "history": {m["id"]: await _all(client, f"/v1/memories/{m['id']}/history") for m in memories},
        "facts": await _all(client, "/v1/facts", include_history="true"),
        "entities": await _all(client, "/v1/entities"),
        "sessions": await _all(client, "/v1/sessions"),
        "documents": await _all(client, "/v1/documents"),
        "repositories": await _all(client, "/v1/repositories"),
        "categories": await _all(client, "/v1/categories"),
        "predicates": await _all(client, "/v1/predicates"),
        "tags": await _all(client, "/v1/tags"),
        "narratives": {u["id"]: await _all(client, f"/v1/users/{u['id']}/narratives") for u in users},
    }
    out["messages"] = {s["id"]: await _all(client, f"/v1/sessions/{s['id']}/messages") for s in out["sessions"]}
    out["chunks"] = {d["id"]: await _all(client, f"/v1/documents/{d['id']}/chunks") for d in out["documents"]}
    return out


def _without_header(body: bytes) -> list[bytes]:
    return body.splitlines()[1:]


async def test_the_export_file(source: Source) -> None:
    header, records = _records(source.export)
    assert header["kind"] == "engram.export" and header["version"] == 1
    assert header["org_id"] == str(source.org.id) and header["scope"] == {"type": "org"}
    assert header["embedding_model"] and header["dimensions"] == 384 and header["include_embeddings"] is True
    # The last line is the end record, counting the records; every other record is of a known kind.
    assert json.loads(source.export.splitlines()[-1]) == {"kind": "end", "records": len(records)}
    assert source.export.endswith(b"\n") and len(source.export.splitlines()) == len(records) + 2
    kinds = [r["kind"] for r in records]
    order = [k.name for k in KINDS]
    assert "end" not in order
    assert kinds == sorted(kinds, key=order.index), "records come in dependency order"
    assert set(kinds) == set(order), f"every kind is exercised; missing: {set(order) - set(kinds)}"
    assert not {"api_key", "audit_log", "job"} & set(kinds)
    assert "secret_hash" not in source.export.decode() and "egm_" not in source.export.decode()
    memory = next(r["data"] for r in records if r["kind"] == "memory")
    assert "org_id" not in memory and "search_tsv" not in memory
    assert len(memory["embedding"]) == 384 and memory["embedding_model"] == header["embedding_model"]
    facts = [r["data"] for r in records if r["kind"] == "fact"]
    assert any(f["superseded_at"] for f in facts) and any(f["invalidated_by"] for f in facts)
    assert any(r["kind"] == "memory_history" and r["data"]["action"] == "updated" for r in records)


async def test_org_round_trip_into_another_org(source: Source, make_org: OrgFactory) -> None:
    target = await make_org()
    result = await _ok(await _import(target, source.export))
    _, records = _records(source.export)
    for kind in KINDS:
        assert result["imported"][kind.plural] == sum(r["kind"] == kind.name for r in records), kind.name
    assert sum(result["skipped"].values()) == 0 and result["cleared_references"] == 0
    assert result["vectors"]["reembedded"] == 0 and result["vectors"]["kept"] > 0
    assert result["lines"] == len(records) + 2  # the header and the end record too

    # The copy exports to the same file, line for line (ids, timestamps, versions, vectors).
    again = await target.client.get("/v1/export")
    assert _without_header(again.content) == _without_header(source.export)
    assert _records(again.content)[0]["org_id"] == str(target.id)

    _assert_same_results(await _searches(source.org.client), await _searches(target.client))
    assert await _reads(target.client) == await _reads(source.org.client)

    # Importing the same file again writes nothing.
    result = await _ok(await _import(target, source.export))
    assert sum(result["imported"].values()) == 0
    assert sum(result["skipped"].values()) == len(records)
    assert _without_header((await target.client.get("/v1/export")).content) == _without_header(source.export)


async def test_user_round_trip_after_the_user_is_deleted(app, source: Source, make_org: OrgFactory) -> None:  # type: ignore[no-untyped-def]
    copy = await make_org()
    await _ok(await _import(copy, source.export))
    c = copy.client
    alice = source.alice["id"]
    key = (await _ok(await c.post("/v1/keys", json={"name": "alice", "user_id": alice}), 201))["api_key"]
    async with client_for(app, key) as as_alice:
        queries = [{k: v for k, v in q.items() if k != "external_user_id"} for q in QUERIES]
        before = await _searches(as_alice, queries)
        mine = await _all(as_alice, "/v1/memories", include_expired="true")
        history = {m["id"]: await _all(as_alice, f"/v1/memories/{m['id']}/history") for m in mine}
        facts = await _all(as_alice, "/v1/facts", include_history="true")
        own = await as_alice.get("/v1/export")
    assert own.status_code == 200
    header, records = _records(own.content)
    assert header["scope"] == {"type": "user", "user_id": alice, "external_id": "alice"}
    # An admin's export of the user is the same file.
    by_admin = await c.get("/v1/export", params={"external_user_id": "alice"})
    assert _without_header(by_admin.content) == _without_header(own.content)
    assert {r["data"]["id"] for r in records if r["kind"] == "user"} == {alice}
    bobs = {m["id"] for m in await _all(c, "/v1/memories", user_id=source.bob["id"])}
    assert bobs and not bobs & {r["data"].get("id") for r in records}
    assert {r["kind"] for r in records} >= {"team", "agent", "app", "session", "message", "memory", "fact", "chunk"}

    assert (await c.delete(f"/v1/users/{alice}")).status_code == 204
    assert (await c.get(f"/v1/memories/{mine[0]['id']}")).status_code == 404
    result = await _ok(await _import(copy, own.content))
    assert result["imported"]["users"] == 1 and result["imported"]["memories"] == len(
        [r for r in records if r["kind"] == "memory"]
    )
    assert result["skipped"]["teams"] == 1 and result["skipped"]["apps"] == 1  # shared rows were still there

    key = (await _ok(await c.post("/v1/keys", json={"name": "alice2", "user_id": alice}), 201))["api_key"]
    async with client_for(app, key) as as_alice:
        _assert_same_results(before, await _searches(as_alice, queries))
        assert await _all(as_alice, "/v1/memories", include_expired="true") == mine
        assert {m["id"]: await _all(as_alice, f"/v1/memories/{m['id']}/history") for m in mine} == history
        assert await _all(as_alice, "/v1/facts", include_history="true") == facts


async def test_who_may_export_and_import(app, source: Source) -> None:  # type: ignore[no-untyped-def]
    c = source.org.client
    alice, bob = source.alice["id"], source.bob["id"]
    keys = {}
    for name, body in (
        ("alice", {"user_id": alice}),
        ("reader", {"scopes": ["read", "write"]}),
        ("team", {"team_id": source.alice["team_id"]}),
    ):
        keys[name] = (await _ok(await c.post("/v1/keys", json={"name": f"x-{name}", **body}), 201))["api_key"]
    async with client_for(app, keys["alice"]) as as_alice:
        # Another user, existing or not, by id or by external id: one answer, naming no id.
        details = set()
        for params in (
            {"user_id": bob},
            {"user_id": str(uuid.uuid4())},
            {"external_user_id": "bob"},
            {"external_user_id": "nobody"},
        ):
            problem = assert_problem(await as_alice.get("/v1/export", params=params), 403)
            assert bob not in str(problem), problem
            details.add(problem["detail"])
        assert details == {"this API key is bound to another user"}
        mine = await as_alice.get("/v1/export", params={"external_user_id": "alice"})
        assert mine.status_code == 200 and _records(mine.content)[0]["scope"]["user_id"] == alice
        own = await as_alice.get("/v1/export", params={"user_id": alice})
        assert own.status_code == 200 and _records(own.content)[0]["scope"]["user_id"] == alice
        assert_problem(await _import(Org(source.org.id, keys["alice"], as_alice), own.content), 403)
    for name in ("reader", "team"):
        async with client_for(app, keys[name]) as other:
            assert_problem(await other.get("/v1/export"), 403)
            assert_problem(await other.get("/v1/export", params={"user_id": alice}), 403)
    assert_problem(await c.get("/v1/export", params={"user_id": str(uuid.uuid4())}), 404)
    assert_problem(await c.get("/v1/export", params={"external_user_id": "nobody"}), 404)
    assert_problem(await c.get("/v1/export", params={"user_id": alice, "external_user_id": "alice"}), 422)
    audit = await _all(c, "/v1/audit", action="data.exported")
    assert {(a["entity_type"], a["entity_id"]) for a in audit} >= {
        ("organization", str(source.org.id)),
        ("user", alice),
    }


async def test_another_org_sees_nothing(source: Source, make_org: OrgFactory) -> None:
    other = await make_org()
    body = (await other.client.get("/v1/export")).content
    header, records = _records(body)
    assert header["org_id"] == str(other.id) and records == []
    assert_problem(await other.client.get("/v1/export", params={"user_id": source.alice["id"]}), 404)
    # Importing the source's file elsewhere leaves the source as it was.
    await _ok(await _import(other, source.export))
    assert _without_header((await source.org.client.get("/v1/export")).content) == _without_header(source.export)


def _counts(database_url: str, org_id: uuid.UUID) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return {
            k.name: conn.execute(f"SELECT count(*) FROM {k.table.name} WHERE org_id = %s", (org_id,)).fetchone()[0]  # type: ignore[index]
            for k in KINDS
        }


async def test_a_bad_file_names_its_line_and_writes_nothing(
    source: Source, make_org: OrgFactory, database_url: str
) -> None:
    target = await make_org()
    lines = source.export.splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]
    first_memory = kinds.index("memory")
    first_chunk = kinds.index("chunk")

    def replaced(index: int, line: bytes) -> bytes:
        return b"\n".join([*lines[:index], line, *lines[index + 1 :]]) + b"\n"

    memory = json.loads(lines[first_memory])

    def with_memory(**fields: Any) -> bytes:
        return replaced(first_memory, json.dumps({**memory, "data": {**memory["data"], **fields}}).encode())

    at = first_memory + 1
    cases: list[tuple[bytes, int, int]] = [
        (replaced(first_memory, b'{"kind": "memory", "data": {'), 400, at),
        (replaced(first_memory, b"\xff\xfe"), 400, at),
        (replaced(first_memory, b"[" * 100_000), 400, at),
        (replaced(first_memory, b'{"kind": "memory", "data": {"id": NaN}}'), 422, at),
        (with_memory(importance="high"), 422, at),
        (with_memory(importance=7), 422, at),  # the schema's check
        (with_memory(colour="red"), 422, at),
        (with_memory(id="x"), 422, at),
        (with_memory(content="a\u0000b"), 422, at),
        (with_memory(metadata=[1]), 422, at),
        (with_memory(created_at="yesterday"), 422, at),
        (with_memory(language="klingon"), 422, at),
        (with_memory(embedding=["x"]), 422, at),
        (replaced(first_memory, json.dumps({**memory, "kind": "api_key"}).encode()), 422, at),
        (replaced(first_memory, json.dumps(memory["data"]).encode()), 422, at),
        (replaced(0, b'{"kind": "engram.export", "version": 2}'), 422, 1),
        (b"\n".join(lines[1:]), 422, 1),  # no header
        # Chunks whose documents are not in the file: the first one's line is named.
        (
            b"\n".join(line for line, kind in zip(lines, kinds, strict=True) if kind != "document"),
            422,
            first_chunk + 1 - kinds.count("document"),
        ),
    ]
    for body, status, line in cases:
        problem = assert_problem(await _import(target, body), status)
        assert f"line {line}" in str(problem["detail"]), problem
        assert problem["errors"][0]["location"] == f"line {line}"  # type: ignore[index]
    assert_problem(await _import(target, b""), 422)
    r = await target.client.post("/v1/import", content=source.export, headers={"Content-Type": "application/json"})
    assert_problem(r, 415)
    assert sum(_counts(database_url, target.id).values()) == 0

    # A new row that takes an existing row's unique name is a conflict, named by its line.
    await _ok(await target.client.post("/v1/teams", json={"name": "research"}), 201)
    problem = assert_problem(await _import(target, source.export), 409)
    assert "line 2" in str(problem["detail"]) and "team" in str(problem["detail"])
    counts = _counts(database_url, target.id)
    assert counts["team"] == 1 and sum(counts.values()) == 1


async def test_the_import_size_limit(source: Source, make_org: OrgFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    target = await make_org()
    monkeypatch.setattr(limits, "MAX_IMPORT_BYTES", len(source.export) - 1)
    problem = assert_problem(await _import(target, source.export), 413)
    assert str(len(source.export) - 1) in str(problem["detail"])
    assert (await target.client.get("/v1/memories")).json()["data"] == []
    monkeypatch.setattr(limits, "MAX_IMPORT_BYTES", len(source.export))
    await _ok(await _import(target, source.export))


async def test_an_import_may_be_larger_than_other_requests(  # type: ignore[no-untyped-def]
    settings, db, embedder, source: Source, make_org: OrgFactory
) -> None:
    """The request-size cap (ENGRAM_MAX_REQUEST_BYTES) does not apply to imports: they stream into the
    service, which holds them to MAX_IMPORT_BYTES."""
    from engramdb.server import create_app

    cap = len(source.export) // 2
    small = create_app(settings.model_copy(update={"max_request_bytes": cap}), db=db, embedder=embedder)
    target = await make_org()
    async with client_for(small, target.key) as client:
        big_memory = {"external_user_id": "x", "content": "y" * cap}
        assert_problem(await client.post("/v1/memories", json=big_memory), 413)
        imported = await client.post(
            "/v1/import", content=source.export, headers={"content-type": "application/x-ndjson"}
        )
        assert imported.status_code == 200, imported.text
        assert sum(imported.json()["imported"].values()) > 0


async def test_without_vectors_the_import_embeds_again(app, source: Source, make_org: OrgFactory) -> None:  # type: ignore[no-untyped-def]
    slim = await source.org.client.get("/v1/export", params={"include_embeddings": "false"})
    header, records = _records(slim.content)
    assert header["include_embeddings"] is False
    assert len(slim.content) < len(source.export) / 3
    assert not any("embedding" in r["data"] or "embedding_model" in r["data"] for r in records)
    target = await make_org()
    result = await _ok(await _import(target, slim.content))
    embedded_kinds = {"message", "memory", "entity", "fact", "chunk"}
    assert result["vectors"] == {"kept": 0, "reembedded": sum(r["kind"] in embedded_kinds for r in records)}
    # Facts and entities were embedded by the import; messages, memories and chunks wait for the backfill.
    facts = {"query": "where does Alice work?", "types": ["facts"], "mode": "vector"}
    _assert_same_results(await _searches(source.org.client, [facts]), await _searches(target.client, [facts]), 1e-4)
    memories = {"query": "green tea", "types": ["memories"], "mode": "vector"}
    assert (await _searches(target.client, [memories])) == [[]]
    assert await backfill.backfill(app.state.runtime) >= sum(
        r["kind"] in {"message", "memory", "chunk"} for r in records
    )
    for query in QUERIES:
        (before,), (after,) = await _searches(source.org.client, [query]), await _searches(target.client, [query])
        assert [r["id"] for r in after][:3] == [r["id"] for r in before][:3], query
        assert [r["score"] for r in after] == pytest.approx([r["score"] for r in before], abs=1e-3)


async def test_vectors_of_another_model_are_dropped(source: Source, make_org: OrgFactory) -> None:
    lines = []
    for line in source.export.splitlines():
        record = json.loads(line)
        if record.get("kind") == "memory":
            record["data"]["embedding_model"] = "someone/else"
        lines.append(json.dumps(record).encode())
    target = await make_org()
    result = await _ok(await _import(target, b"\n".join(lines)))
    memories = sum(json.loads(line).get("kind") == "memory" for line in lines)
    assert result["vectors"]["reembedded"] == memories
    exported = _records((await target.client.get("/v1/export")).content)[1]
    assert all(r["data"]["embedding"] is None for r in exported if r["kind"] == "memory")


async def test_a_user_export_imports_on_its_own(source: Source, make_org: OrgFactory) -> None:
    c = source.org.client
    body = (await c.get("/v1/export", params={"external_user_id": "alice"})).content
    _, records = _records(body)
    fresh = await make_org()
    result = await _ok(await _import(fresh, body))
    assert sum(result["imported"].values()) == len(records)
    # Bob spoke in Alice's session, and is not in her file: that turn is kept, unattributed.
    assert result["cleared_references"] == 1
    said_by_bob = [
        r["data"]["id"] for r in records if r["kind"] == "message" and r["data"]["user_id"] == source.bob["id"]
    ]
    assert len(said_by_bob) == 1
    assert (await _ok(await fresh.client.get(f"/v1/messages/{said_by_bob[0]}")))["user_id"] is None
    # Her memories, facts and messages score alike (the organization's other shared entities are not hers).
    scoped = [{**q, "external_user_id": "alice", "types": ["messages", "memories", "facts"]} for q in QUERIES]
    _assert_same_results(await _searches(c, scoped), await _searches(fresh.client, scoped))


async def test_small_batches_give_the_same_file(
    source: Source, make_org: OrgFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keyset paging (one key, and the two-column key of memory links) and batched inserts lose nothing."""
    monkeypatch.setattr(export, "KINDS", tuple(dataclasses.replace(k, batch=2) for k in export.KINDS))
    monkeypatch.setattr(import_, "BATCH_ROWS", 3)
    paged = (await source.org.client.get("/v1/export")).content
    assert _without_header(paged) == _without_header(source.export)
    target = await make_org()
    await _ok(await _import(target, paged))
    assert _without_header((await target.client.get("/v1/export")).content) == _without_header(source.export)


def _line_of(lines: list[bytes], kind: str) -> int:
    """The index of the first record of ``kind``."""
    return next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == kind)


def _replaced(lines: list[bytes], index: int, record: dict[str, Any]) -> bytes:
    return b"\n".join([*lines[:index], json.dumps(record).encode(), *lines[index + 1 :]]) + b"\n"


async def test_bad_values_are_a_422_naming_their_line(source: Source, make_org: OrgFactory, database_url: str) -> None:
    """Values that once were a 500 (a KeyError, a value the database could not index) or were stored
    though no read could return them (1 BC), and text over the API's limits."""
    target = await make_org()
    lines = source.export.splitlines()

    def with_field(kind: str, drop: tuple[str, ...] = (), **fields: Any) -> tuple[bytes, int]:
        index = _line_of(lines, kind)
        record = json.loads(lines[index])
        data = {k: v for k, v in record["data"].items() if k not in drop}
        return _replaced(lines, index, {**record, "data": {**data, **fields}}), index + 1

    many_words = " ".join(f"w{i}" for i in range(300_000))  # ~2 MB, beyond what a tsvector holds
    assert len(many_words) > 1_900_000
    rng = random.Random(7)
    noise = "".join(rng.choices(string.ascii_lowercase, k=10_000))  # too big for a B-tree index, compressed
    cases: list[tuple[tuple[bytes, int], str]] = [
        # Without its vector, an entity or a fact is embedded from its name or statement (once a KeyError).
        (with_field("entity", drop=("name", "embedding")), "entity.name is required"),
        (with_field("fact", drop=("statement", "embedding")), "fact.statement is required"),
        (with_field("entity", drop=("embedding",), name=None), "entity.name is required"),
        (with_field("fact", drop=("statement",)), "fact.statement is required"),
        (with_field("team", name=noise), "team.name is 10,000 characters; the API takes at most 200"),
        (with_field("user", external_id="x" * 257), "user.external_id is 257 characters"),
        (with_field("message", content="m" * (limits.MAX_MESSAGE_CHARS + 1)), "message.content is 32,001"),
        (with_field("document", path="p/" * 600), "document.path is 1,200 characters"),
        # The database's own limits (SQLSTATE 54000), where the API's do not apply: once a 500.
        (with_field("memory", content=many_words), "the memory cannot be stored: string is too long for tsvector"),
        (with_field("entity", name=noise, normalized_name=noise), "the entity cannot be stored: index row"),
        (with_field("memory", created_at="0001-01-01T00:00:00+05:00"), "memory.created_at: out of range"),
        (with_field("memory", created_at="9999-12-31T23:00:00-05:00"), "memory.created_at: out of range"),
        (with_field("fact", valid_from="-0044-03-15T00:00:00Z"), "fact.valid_from"),
    ]
    for (body, line), message in cases:
        problem = assert_problem(await _import(target, body), 422)
        assert str(problem["detail"]).startswith(f"line {line}: "), problem
        assert message in str(problem["detail"]), problem
        assert problem["errors"][0]["location"] == f"line {line}"  # type: ignore[index]
    assert sum(_counts(database_url, target.id).values()) == 0


async def test_timestamps_at_the_edges_of_the_range_read_back(make_org: OrgFactory) -> None:
    """The range an import takes is the range every read can return: such a user lists and exports."""
    target = await make_org()
    user = {
        "id": str(uuid.uuid4()),
        "external_id": "old-timer",
        "metadata": {},
        "created_at": "0001-01-01T00:00:00+00:00",
        "updated_at": "9999-12-31T23:59:59.999999+00:00",
    }
    header = {"kind": "engram.export", "version": 1}
    body = b"".join(
        json.dumps(r).encode() + b"\n" for r in (header, {"kind": "user", "data": user}, {"kind": "end", "records": 1})
    )
    result = await _ok(await _import(target, body))
    assert result["imported"]["users"] == 1 and result["lines"] == 3
    (listed,) = await _all(target.client, "/v1/users")
    assert listed["created_at"].startswith("0001-01-01T00:00:00") and listed["updated_at"].startswith("9999-12-31")
    _, records = _records((await target.client.get("/v1/export")).content)
    assert [r["data"]["created_at"] for r in records] == ["0001-01-01T00:00:00+00:00"]


async def test_a_file_cut_short_is_refused(source: Source, make_org: OrgFactory, database_url: str) -> None:
    target = await make_org()
    lines = source.export.splitlines()
    n = len(lines)  # the end record's line number
    records = n - 2
    end = json.loads(lines[-1])
    assert end == {"kind": "end", "records": records}
    cut = "the file ends before its end record: the export was cut short"
    cases: list[tuple[bytes, int, int, str]] = [
        (b"\n".join(lines[:-1]) + b"\n", 422, n - 1, cut),  # cut between two records
        (b"\n".join(lines[: n // 2]), 422, n // 2, cut),
        (source.export[: len(source.export) - len(lines[-1]) - 40], 422, n - 1, cut),  # inside the last record
        (lines[0] + b"\n", 422, 1, cut),  # the header alone
        (b"\n".join([*lines[:-2], lines[-1]]) + b"\n", 422, n - 1, f"counts {records} records but the file holds"),
        (source.export + b'{"kind": "end", "records": 0}\n', 422, n + 1, "a record follows the end record"),
        (source.export + lines[1] + b"\n", 422, n + 1, "a record follows the end record"),
        (_replaced(lines, n - 1, {"kind": "end", "records": records + 1}), 422, n, "the file holds"),
        (_replaced(lines, n - 1, {"kind": "end", "records": str(records)}), 422, n, "end record records"),
        (_replaced(lines, n - 1, {"kind": "end"}), 422, n, "end record records"),
        (_replaced(lines, n - 1, {"kind": "end", "records": records, "more": 1}), 422, n, "end record more"),
        (_replaced(lines, 1, {"kind": "end", "records": 0}), 422, 3, "a record follows the end record"),
    ]
    for body, status, line, message in cases:
        problem = assert_problem(await _import(target, body), status)
        assert str(problem["detail"]).startswith(f"line {line}: "), (message, problem)
        assert message in str(problem["detail"]), problem
    assert sum(_counts(database_url, target.id).values()) == 0
    # A line that is not JSON before the last one is still a 400 naming it.
    problem = assert_problem(await _import(target, b"\n".join([*lines[:3], b"{oops", *lines[3:]])), 400)
    assert str(problem["detail"]).startswith("line 4: not valid JSON")
    # The file as exported imports, with or without a final newline and with blank lines after the end.
    await _ok(await _import(target, source.export.rstrip(b"\n")))
    result = await _ok(await _import(target, source.export + b"\n\n"))
    assert sum(result["skipped"].values()) == records


async def test_the_line_limit(source: Source, make_org: OrgFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    target = await make_org()
    lines = source.export.splitlines()
    longest = max(range(len(lines)), key=lambda i: len(lines[i]))
    monkeypatch.setattr(limits, "MAX_IMPORT_LINE_BYTES", len(lines[longest]) - 1)
    problem = assert_problem(await _import(target, source.export), 413)
    assert str(problem["detail"]).startswith(f"line {longest + 1}: the line is over the {len(lines[longest]) - 1}")
    assert problem["errors"][0]["location"] == f"line {longest + 1}"  # type: ignore[index]
    assert (await target.client.get("/v1/memories")).json()["data"] == []

    # A line that never ends is refused once it passes the limit, without reading the rest of the body.
    monkeypatch.setattr(limits, "MAX_IMPORT_LINE_BYTES", 1_000)
    sent = 0

    async def endless() -> Any:
        nonlocal sent
        yield lines[0] + b"\n"
        while True:
            sent += 1
            yield b"x" * 100

    r = await target.client.post("/v1/import", content=endless(), headers={"Content-Type": "application/x-ndjson"})
    problem = assert_problem(r, 413)
    assert str(problem["detail"]).startswith("line 2: ") and sent < 20

    monkeypatch.setattr(limits, "MAX_IMPORT_LINE_BYTES", len(lines[longest]))
    await _ok(await _import(target, source.export))

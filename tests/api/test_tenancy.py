"""Tenancy fails closed, for every route in the OpenAPI document (new routes are covered automatically:
a route whose ids or body this test cannot fill makes it fail until the route is added here)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from engramdb.cli.asgi import StreamingASGITransport
from engramdb.config import Settings
from tests.conftest import Org, client_for


def streaming_client(app: Any, key: str) -> httpx.AsyncClient:
    transport = StreamingASGITransport(app)
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.AsyncClient(transport=transport, base_url="http://engram.test", headers=headers)


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    """The webhooks below point at 127.0.0.1, which must be allowed (nothing is sent: no worker runs)."""
    return Settings(
        database_url=database_url, auto_migrate=False, key_touch_interval_s=0, webhook_allow_networks=["127.0.0.1/32"]
    )


TENANT_TABLES = (
    "team",
    "user_account",
    "agent",
    "app",
    "api_key",
    "session",
    "message",
    "memory",
    "memory_history",
    "audit_log",
    "job",
    "entity",
    "fact",
    "memory_entity",
    "category",
    "predicate",
    "user_narrative",
    "repository",
    "document",
    "chunk",
    "webhook_endpoint",
    "webhook_delivery",
    "rate_limit",
    "task",
    "task_dependency",
    "task_event",
    "agent_message",
    "agent_message_delivery",
    "stream_seq",
    "access_grant",
    "retention_policy",
    "legal_hold",
    "retention_run",
    "federated_session",
    "federated_participant",
    "federated_contribution",
    "aggregated_insight",
    "offloaded_context",
)


async def _seed(org: Org) -> dict[str, str]:
    c = org.client
    ids: dict[str, str] = {}
    # Subscribed to everything first, so the writes below leave deliveries in its log (no worker sends them).
    ids["webhook"] = (await c.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/org-a"})).json()["id"]
    ids["team"] = (await c.post("/v1/teams", json={"name": "red"})).json()["id"]
    user = (await c.post("/v1/users", json={"external_id": "alice-ext", "team_id": ids["team"]})).json()
    ids["user"], ids["external_id"] = user["id"], user["external_id"]
    ids["agent"] = (await c.post("/v1/agents", json={"name": "helper", "user_id": ids["user"]})).json()["id"]
    ids["app"] = (await c.post("/v1/apps", json={"name": "crm"})).json()["id"]
    ids["key"] = (await c.post("/v1/keys", json={"name": "spare", "scopes": ["admin"]})).json()["id"]
    ids["session"] = (
        await c.post(
            "/v1/sessions",
            json={"user_id": ids["user"], "agent_id": ids["agent"], "team_id": ids["team"], "app_id": ids["app"]},
        )
    ).json()["id"]
    added = (
        await c.post(
            f"/v1/sessions/{ids['session']}/messages",
            json={"messages": [{"role": "user", "content": "secret of org A"}]},
        )
    ).json()
    msgs, msgs_job = added["data"], added["job"]
    ids["message"] = msgs[0]["id"]
    ids["job"] = msgs_job["id"]
    ids["memory"] = (
        await c.post(
            "/v1/memories",
            json={"user_id": ids["user"], "content": "org A's private memory", "session_id": ids["session"]},
        )
    ).json()["id"]
    fact = (
        await c.post(
            "/v1/facts",
            json={"subject": "Orgaperson", "predicate": "knows", "object": "Orgafriend", "object_is_entity": True},
        )
    ).json()["fact"]
    ids["fact"], ids["entity"], ids["entity2"] = fact["id"], fact["subject_id"], fact["object_id"]
    category = (await c.post("/v1/categories", json={"name": "org-a-only", "description": "org A's category"})).json()
    ids["category"] = category["id"]
    own = {"cardinality": "one", "description": "org A's predicate"}
    ids["predicate"] = (await c.put("/v1/predicates/org_a_only_rel", json=own)).json()["name"]
    repo = (await c.post("/v1/repositories", json={"name": "org-a-repo", "user_id": ids["user"]})).json()
    ids["repository"] = repo["id"]
    synced = await c.post(
        f"/v1/repositories/{repo['id']}/files", json={"files": [{"path": "a.md", "content": "# A\n\norg A's file"}]}
    )
    assert synced.json()["results"][0]["action"] == "added"
    doc = await c.post("/v1/documents", json={"content": "org A's document", "path": "a.txt", "tags": ["org-a-tag"]})
    ids["document"] = doc.json()["document"]["id"]
    worker = (await c.post("/v1/agents", json={"name": "worker", "capabilities": ["x"]})).json()["id"]
    first = (await c.post("/v1/tasks", json={"title": "org A's first task", "queue": "a"})).json()["id"]
    ids["task"] = (
        await c.post("/v1/tasks", json={"title": "org A's task", "queue": "a", "depends_on": [first]})
    ).json()["id"]
    claimed = (await c.post("/v1/tasks/claim", json={"agent_id": worker, "queue": "a"})).json()["task"]
    assert claimed["id"] == first
    sent = await c.post(
        "/v1/agent-messages", json={"from_agent_id": worker, "to_agent_id": ids["agent"], "payload": {"x": "org A"}}
    )
    ids["agent_message"] = sent.json()["id"]
    grantee = (await c.post("/v1/keys", json={"name": "grantee", "team_id": ids["team"]})).json()["id"]
    grant = {"grantee_key_id": grantee, "resource": "memories", "owner_user_id": ids["user"], "tags": ["org-a-tag"]}
    ids["grant"] = (await c.post("/v1/grants", json=grant)).json()["id"]
    policy = {"name": "org-a-policy", "target": "memories", "after_days": 365, "user_id": ids["user"]}
    ids["retention_policy"] = (await c.post("/v1/retention/policies", json=policy)).json()["id"]
    ran = await c.post(f"/v1/retention/policies/{ids['retention_policy']}/run", params={"dry_run": "true"})
    ids["retention_run"] = ran.json()["id"]
    hold = {"user_id": ids["user"], "reason": "org A's hold"}
    ids["legal_hold"] = (await c.post("/v1/legal-holds", json=hold)).json()["id"]
    await c.patch("/v1/organization", json={"isolation": "federated"})
    insight = {"topic": "org A's insight", "query": "memory_types"}
    ids["insight_session"] = (await c.post("/v1/insights/sessions", json=insight)).json()["id"]
    ids["participation"] = (await c.post(f"/v1/insights/sessions/{ids['insight_session']}/join", json={})).json()["id"]
    offloaded = await c.post("/v1/contexts", json={"content": "org A's scratchpad", "session_id": ids["session"]})
    ids["context"] = offloaded.json()["context"]["id"]
    deliveries = (await c.get(f"/v1/webhooks/{ids['webhook']}/deliveries")).json()["data"]
    assert {d["event_type"] for d in deliveries} >= {"memory.created", "document.synced"}
    ids["delivery"] = deliveries[0]["id"]
    return ids


# Which seeded id fills a path parameter, by the path's first segment after /v1.
PATH_IDS = {
    ("teams", "item_id"): "team",
    ("users", "item_id"): "user",
    ("agents", "item_id"): "agent",
    ("apps", "item_id"): "app",
    ("keys", "key_id"): "key",
    ("sessions", "session_id"): "session",
    ("messages", "message_id"): "message",
    ("memories", "memory_id"): "memory",
    ("users", "external_id"): "external_id",
    ("users", "user_id"): "user",
    ("jobs", "job_id"): "job",
    ("facts", "fact_id"): "fact",
    ("entities", "entity_id"): "entity",
    ("entities", "target_id"): "entity2",
    ("categories", "category_id"): "category",
    ("predicates", "name"): "predicate",
    ("documents", "document_id"): "document",
    ("repositories", "repository_id"): "repository",
    ("webhooks", "webhook_id"): "webhook",
    ("webhooks", "delivery_id"): "delivery",
    ("agents", "agent_id"): "agent",
    ("tasks", "task_id"): "task",
    ("agent-messages", "message_id"): "agent_message",
    ("grants", "grant_id"): "grant",
    ("retention", "policy_id"): "retention_policy",
    ("retention", "run_id"): "retention_run",
    ("legal-holds", "hold_id"): "legal_hold",
    ("insights", "session_id"): "insight_session",
    ("insights", "participation_id"): "participation",
    ("contexts", "context_id"): "context",
}
# Routes keyed by a name, not an id: org B's call names B's own predicate of that name, never A's (the snapshot
# shows A's untouched). The PUT defines it in B, so the DELETE that follows it removes B's definition, and B's
# own audit log then holds the name: a leak of A's predicate shows as its description ("org A").
BY_NAME = {"set_predicate": 200, "delete_predicate": 204}
NAMES = {"predicate"}
# Live streams answer until the client leaves: read as streams, their status only.
STREAMS = {"stream_tasks", "stream_inbox"}

# Operations whose body is multipart/form-data: their entry in _bodies() holds httpx's files and data.
MULTIPART = {"upload_document"}
# Operations whose body is raw bytes (an export file): their entry in _bodies() holds httpx's content and headers.
RAW = {"import_data"}
# No key, no organization: any caller gets the same answer.
UNSCOPED = {"get_health", "get_liveness", "get_readiness"}


def _import_file(a: dict[str, str]) -> bytes:
    """An export file naming org A's team: imported by B, it lands in B (the key decides the org)."""
    header = {"kind": "engram.export", "version": 1}
    team = {"kind": "team", "data": {"id": a["team"], "name": "imported-by-b"}}
    end = {"kind": "end", "records": 1}
    return b"\n".join(json.dumps(line).encode() for line in (header, team, end))


# A valid body for each operation that takes one, naming org A's ids where it can.
def _bodies(a: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        "create_team": {"name": "blue"},
        "update_team": {"name": "renamed"},
        "create_user": {"external_id": "only-in-b"},
        "update_user": {"display_name": "x"},
        "create_agent": {"name": "b-agent", "user_id": a["user"]},
        "update_agent": {"description": "x"},
        "create_app": {"name": "b-app"},
        "update_app": {"description": "x"},
        "create_api_key": {"name": "k", "scopes": ["read"], "user_id": a["user"]},
        "update_api_key": {"name": "x"},
        "create_session": {"user_id": a["user"]},
        "update_session": {"title": "x"},
        "add_messages": {"messages": [{"role": "user", "content": "intruder"}]},
        "create_memory": {"content": "x", "session_id": a["session"]},
        "update_memory": {"content": "overwritten"},
        "change_memory_state": {"state": "archived"},
        "search": {"query": "secret of org A private memory", "top_k": 50},
        "create_fact": {"subject": "Intruder", "predicate": "knows", "object": "x", "user_id": a["user"]},
        "update_entity": {"name": "renamed"},
        "merge_entities": {"entity_ids": [a["entity2"]]},
        "split_entity": {"name": "Splinter"},
        "create_category": {"name": "b-only", "description": "org B's category"},
        "update_category": {"description": "overwritten"},
        "set_predicate": {"cardinality": "many", "description": "org B's"},
        "assemble_context": {"session_id": a["session"], "query": "secret of org A", "token_budget": 500},
        "create_document": {"content": "intruder", "path": "x.md", "repository_id": a["repository"]},
        "upload_document": {"files": {"file": ("x.md", b"intruder")}, "data": {"repository_id": a["repository"]}},
        "update_document": {"content": "overwritten", "tags": ["x"]},
        "create_repository": {"name": "b-repo", "user_id": a["user"]},
        "update_repository": {"name": "renamed"},
        "sync_repository_files": {"files": [{"path": "a.md", "content": "overwritten"}]},
        "prune_repository": {"keep_paths": []},
        "rename_tag": {"from": "org-a-tag", "to": "renamed-by-b"},
        "import_data": {"content": _import_file(a), "headers": {"Content-Type": "application/x-ndjson"}},
        "create_webhook": {"url": "http://127.0.0.1:9/org-b", "event_types": ["memory.created"]},
        "update_webhook": {"url": "http://127.0.0.1:9/stolen", "enabled": False},
        "set_limits": {"writes": {"per_key": 1000}},
        "set_decay": {"half_life_days": {"episodic": 3}},
        "agent_heartbeat": {"status": "busy", "metrics": {"stolen": True}},
        "ack_inbox": {"message_ids": [a["agent_message"]]},
        "send_agent_message": {"to_agent_id": a["agent"], "payload": {"x": "intruder"}},
        "create_task": {"title": "intruder", "depends_on": [a["task"]]},
        "update_task": {"title": "overwritten"},
        "claim_task": {"agent_id": a["agent"]},
        "extend_task_lease": {"lease_id": a["task"]},
        "complete_task": {"result": {"x": 1}},
        "fail_task": {"error": "intruder"},
        "cancel_task": {"reason": "intruder"},
        "create_grant": {"grantee_user_id": a["user"], "resource": "memories"},
        "update_grant": {"description": "overwritten"},
        "create_retention_policy": {"name": "b-policy", "target": "memories", "after_days": 0, "user_id": a["user"]},
        "update_retention_policy": {"after_days": 0},
        "create_legal_hold": {"user_id": a["user"], "reason": "intruder"},
        "update_legal_hold": {"reason": "overwritten"},
        "update_organization": {"isolation": "shared"},
        "create_insight_session": {"topic": "b's", "query": "memory_types"},
        "join_insight_session": {},
        "offload_context": {"content": "intruder", "session_id": a["session"]},
    }


# Collection routes (no id in the path): what org B must get.
COLLECTION_STATUS = {
    "create_team": 201,
    "create_user": 201,
    "create_app": 201,  # created in B, not A
    "create_agent": 404,
    "create_api_key": 404,
    "create_session": 404,
    "create_memory": 404,
    "search": 200,  # answers, from B's own data only  # name A's ids
    "create_fact": 404,  # names A's user
    "create_category": 201,  # created in B
    "assemble_context": 404,  # names A's session
    "create_document": 404,  # into A's repository
    "upload_document": 404,  # into A's repository
    "create_repository": 404,  # for A's user
    "rename_tag": 200,  # renames B's own tags only (none)
    "import_data": 200,  # into B, whatever the file names
    "create_webhook": 201,  # created in B
    "set_limits": 200,  # B's own limits
    "set_decay": 200,  # B's own half-lives
    "send_agent_message": 404,  # to A's agent
    "create_task": 404,  # waiting for A's task
    "claim_task": 404,  # as A's agent
    "create_grant": 404,  # to A's user
    "create_retention_policy": 404,  # narrowed to A's user
    "create_legal_hold": 404,  # on A's user
    "run_retention": 200,  # B's own expired rows and policies (none)
    "update_organization": 200,  # B's own
    "create_insight_session": 201,  # opened by B, inviting B only
    "offload_context": 404,  # into A's session
}


def _snapshot(url: str, org_id: uuid.UUID) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table} WHERE org_id = %s", (org_id,)).fetchone()
            for table in TENANT_TABLES
        }
        rows = {
            table: conn.execute(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t WHERE org_id = %s",
                (org_id,),
            ).fetchone()
            for table in (
                "team",
                "user_account",
                "agent",
                "app",
                "session",
                "message",
                "memory",
                "entity",
                "fact",
                "job",
                "category",
                "predicate",
                "repository",
                "document",
                "webhook_endpoint",
                "webhook_delivery",
                "task",
                "task_event",
                "agent_message",
                "agent_message_delivery",
                "access_grant",
                "retention_policy",
                "legal_hold",
                "retention_run",
                "federated_session",
                "federated_participant",
                "aggregated_insight",
                "offloaded_context",
            )
        }
    return {"counts": counts, "rows": rows}


async def test_every_route_fails_closed_for_another_org(app, make_org, database_url: str) -> None:  # type: ignore[no-untyped-def]
    a = await make_org()
    b = await make_org()
    ids = await _seed(a)
    bodies = _bodies(ids)
    before = _snapshot(database_url, a.id)
    checked = 0
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            op_id = op["operationId"]
            params = re.findall(r"{(\w+)}", path)
            resource = path.split("/")[2]
            url = path
            for name in params:
                key = PATH_IDS.get((resource, name))
                assert key, f"{method.upper()} {path}: add ({resource!r}, {name!r}) to PATH_IDS"
                url = url.replace("{" + name + "}", ids[key])
            kwargs: dict[str, Any] = {}
            if "requestBody" in op:
                assert op_id in bodies, f"{op_id}: add a body to _bodies() in this test"
                if op_id in MULTIPART or op_id in RAW:
                    kwargs.update(bodies[op_id])
                else:
                    kwargs["json"] = bodies[op_id]
            if op_id in STREAMS and not params:
                async with streaming_client(app, b.key) as live, live.stream("GET", url) as r:
                    assert r.status_code == 200, f"{op_id}: {r.status_code}"
                checked += 1
                continue
            r = await b.client.request(method.upper(), url, **kwargs)
            if op_id in UNSCOPED:
                assert r.status_code == 200, f"{op_id}: {r.status_code} {r.text}"
            elif op_id in BY_NAME:
                assert r.status_code == BY_NAME[op_id], f"{method.upper()} {url}: {r.status_code} {r.text}"
                assert "org A" not in r.text
            elif params:
                assert r.status_code == 404, f"{method.upper()} {url}: {r.status_code} {r.text}"
                assert r.headers["content-type"].startswith("application/problem+json")
            else:
                expected = 200 if method == "get" else COLLECTION_STATUS.get(op_id)
                assert expected, f"{op_id}: add its expected status to COLLECTION_STATUS"
                assert r.status_code == expected, f"{op_id}: {r.status_code} {r.text}"
                if expected == 200:
                    for name, value in ids.items():
                        assert name in NAMES or value not in r.text, f"{op_id} leaked an id of org A"
                    assert "org A" not in r.text
            checked += 1
    assert checked >= 35
    assert _snapshot(database_url, a.id) == before


async def test_user_bound_key_sees_only_its_user(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    alice = (await c.post("/v1/users", json={"external_id": "alice"})).json()
    bob = (await c.post("/v1/users", json={"external_id": "bob"})).json()
    bob_session = (await c.post("/v1/sessions", json={"user_id": bob["id"]})).json()
    bob_memory = (await c.post("/v1/memories", json={"user_id": bob["id"], "content": "bob's"})).json()
    bob_msg = (
        await c.post(
            f"/v1/sessions/{bob_session['id']}/messages", json={"messages": [{"role": "user", "content": "hi"}]}
        )
    ).json()["data"][0]
    key = (
        await c.post("/v1/keys", json={"name": "alice", "scopes": ["read", "write"], "user_id": alice["id"]})
    ).json()["api_key"]
    async with client_for(app, key) as alice_client:
        for url in (
            f"/v1/sessions/{bob_session['id']}",
            f"/v1/memories/{bob_memory['id']}",
            f"/v1/messages/{bob_msg['id']}",
            f"/v1/memories/{bob_memory['id']}/history",
            f"/v1/sessions/{bob_session['id']}/messages",
        ):
            assert (await alice_client.get(url)).status_code == 404, url
        r = await alice_client.post(
            f"/v1/sessions/{bob_session['id']}/messages", json={"messages": [{"role": "user", "content": "x"}]}
        )
        assert r.status_code == 404
        assert (await alice_client.patch(f"/v1/memories/{bob_memory['id']}", json={"content": "x"})).status_code == 404
        # Writes default to the bound user, and may not name another one.
        mine = (await alice_client.post("/v1/memories", json={"content": "alice's"})).json()
        assert mine["user_id"] == alice["id"]
        assert (await alice_client.post("/v1/memories", json={"content": "x", "user_id": bob["id"]})).status_code == 403
        assert (
            await alice_client.post("/v1/memories", json={"content": "x", "external_user_id": "bob"})
        ).status_code == 403
        assert (await alice_client.post("/v1/sessions", json={"external_user_id": "carol"})).status_code == 403
        listed = (await alice_client.get("/v1/memories")).json()["data"]
        assert [m["id"] for m in listed] == [mine["id"]]
        assert (await alice_client.get("/v1/sessions")).json()["data"] == []
        # A bound key is not an admin key.
        assert (await alice_client.get("/v1/users")).status_code == 403


@pytest.mark.parametrize("binding", ["agent_id", "team_id"])
async def test_agent_and_team_bound_keys(app, org: Org, binding: str) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    kind = "agents" if binding == "agent_id" else "teams"
    mine = (await c.post(f"/v1/{kind}", json={"name": "mine"})).json()
    other = (await c.post(f"/v1/{kind}", json={"name": "other"})).json()
    other_session = (await c.post("/v1/sessions", json={binding: other["id"]})).json()
    key = (await c.post("/v1/keys", json={"name": "bound", binding: mine["id"]})).json()["api_key"]
    async with client_for(app, key) as bound:
        assert (await bound.get(f"/v1/sessions/{other_session['id']}")).status_code == 404
        created = (await bound.post("/v1/sessions", json={})).json()
        assert created[binding] == mine["id"]
        assert (await bound.post("/v1/sessions", json={binding: other["id"]})).status_code == 403


async def test_message_visibility_follows_its_session(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    alice = (await c.post("/v1/users", json={"external_id": "alice-v"})).json()
    bob = (await c.post("/v1/users", json={"external_id": "bob-v"})).json()
    session = (await c.post("/v1/sessions", json={"user_id": alice["id"]})).json()
    said_by_bob = (
        await c.post(
            f"/v1/sessions/{session['id']}/messages",
            json={"messages": [{"role": "user", "content": "hi from bob", "user_id": bob["id"]}]},
        )
    ).json()["data"][0]
    keys = {}
    for who in (alice, bob):
        body = {"name": who["external_id"], "user_id": who["id"]}
        keys[who["id"]] = (await c.post("/v1/keys", json=body)).json()["api_key"]
    async with client_for(app, keys[bob["id"]]) as as_bob:
        assert (await as_bob.get(f"/v1/messages/{said_by_bob['id']}")).status_code == 404
        found = (await as_bob.post("/v1/search", json={"query": "hi from bob"})).json()["results"]
        assert found == []
    async with client_for(app, keys[alice["id"]]) as as_alice:
        assert (await as_alice.get(f"/v1/messages/{said_by_bob['id']}")).status_code == 200
        found = (await as_alice.post("/v1/search", json={"query": "hi from bob"})).json()["results"]
        assert [r["id"] for r in found] == [said_by_bob["id"]]


async def test_source_messages_must_be_visible(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    alice = (await c.post("/v1/users", json={"external_id": "alice-s"})).json()
    bob = (await c.post("/v1/users", json={"external_id": "bob-s"})).json()
    session = (await c.post("/v1/sessions", json={"user_id": alice["id"]})).json()
    msg = (
        await c.post(f"/v1/sessions/{session['id']}/messages", json={"messages": [{"role": "user", "content": "x"}]})
    ).json()["data"][0]
    key = (await c.post("/v1/keys", json={"name": "bob", "user_id": bob["id"]})).json()["api_key"]
    async with client_for(app, key) as as_bob:
        r = await as_bob.post("/v1/memories", json={"content": "stolen", "source_message_ids": [msg["id"]]})
        assert r.status_code == 404
    ok = await c.post("/v1/memories", json={"content": "fine", "source_message_ids": [msg["id"]]})
    assert ok.status_code == 201
    missing = await c.post("/v1/memories", json={"content": "x", "source_message_ids": [str(uuid.uuid4())]})
    assert missing.status_code == 404


async def test_user_bound_key_sees_only_its_users_facts_entities_and_jobs(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    alice = (await c.post("/v1/users", json={"external_id": "alice-f"})).json()
    bob = (await c.post("/v1/users", json={"external_id": "bob-f"})).json()
    bob_fact = (
        await c.post(
            "/v1/facts",
            json={
                "subject": "Bobfact",
                "predicate": "owns",
                "object": "Boat",
                "object_is_entity": True,
                "user_id": bob["id"],
            },
        )
    ).json()["fact"]
    bob_session = (await c.post("/v1/sessions", json={"user_id": bob["id"]})).json()
    bob_job = (
        await c.post(
            f"/v1/sessions/{bob_session['id']}/messages", json={"messages": [{"role": "user", "content": "hi"}]}
        )
    ).json()["job"]
    key = (await c.post("/v1/keys", json={"name": "alice-f", "user_id": alice["id"]})).json()["api_key"]
    async with client_for(app, key) as as_alice:
        for url in (
            f"/v1/facts/{bob_fact['id']}",
            f"/v1/entities/{bob_fact['subject_id']}",
            f"/v1/entities/{bob_fact['subject_id']}/neighbors",
            f"/v1/jobs/{bob_job['id']}",
            f"/v1/users/{bob['id']}/narrative",
        ):
            assert (await as_alice.get(url)).status_code == 404, url
        assert (await as_alice.get("/v1/facts")).json()["data"] == []
        assert (await as_alice.get("/v1/entities")).json()["data"] == []
        assert (await as_alice.get("/v1/jobs")).json()["data"] == []
        r = await as_alice.post("/v1/context", json={"session_id": bob_session["id"], "token_budget": 200})
        assert r.status_code == 404
        r = await as_alice.post(
            "/v1/facts", json={"subject": "x", "predicate": "p", "object": "y", "user_id": bob["id"]}
        )
        assert r.status_code == 403
        mine = (await as_alice.post("/v1/facts", json={"subject": "Me", "predicate": "likes", "object": "tea"})).json()
        assert mine["fact"]["user_id"] == alice["id"]


async def test_team_and_agent_bound_keys_on_facts_entities_and_narratives(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    mine = (await c.post("/v1/teams", json={"name": "mine-f"})).json()
    other = (await c.post("/v1/teams", json={"name": "other-f"})).json()
    amy = (await c.post("/v1/users", json={"external_id": "amy-t", "team_id": mine["id"]})).json()
    bob = (await c.post("/v1/users", json={"external_id": "bob-t", "team_id": other["id"]})).json()
    fact = {"predicate": "owns", "object_is_entity": True}
    bobs = (await c.post("/v1/facts", json={**fact, "subject": "Bobt", "object": "Yacht", "user_id": bob["id"]})).json()
    amys = (await c.post("/v1/facts", json={**fact, "subject": "Amyt", "object": "Kayak", "user_id": amy["id"]})).json()
    shared = (await c.post("/v1/facts", json={**fact, "subject": "Acmet", "object": "Tower"})).json()
    team_key = (await c.post("/v1/keys", json={"name": "team", "team_id": mine["id"]})).json()["api_key"]
    async with client_for(app, team_key) as as_team:
        assert [f["id"] for f in (await as_team.get("/v1/facts")).json()["data"]] == [amys["fact"]["id"]]
        for url in (
            f"/v1/facts/{bobs['fact']['id']}",
            f"/v1/facts/{shared['fact']['id']}",
            f"/v1/entities/{bobs['fact']['subject_id']}",
            f"/v1/users/{bob['id']}/narrative",
        ):
            assert (await as_team.get(url)).status_code == 404, url
        names = {e["name"] for e in (await as_team.get("/v1/entities")).json()["data"]}
        assert names == {"Amyt", "Kayak"}
        r = await as_team.post("/v1/facts", json={"subject": "x", "predicate": "p", "object": "y"})
        assert r.status_code == 403
        r = await as_team.post(
            "/v1/facts", json={"subject": "x", "predicate": "p", "object": "y", "user_id": bob["id"]}
        )
        assert r.status_code == 403
        assert (await as_team.post(f"/v1/users/{bob['id']}/narrative")).status_code == 404
        r = await as_team.post(f"/v1/users/{amy['id']}/narrative")
        assert r.status_code == 202 and (await as_team.get(f"/v1/jobs/{r.json()['id']}")).status_code == 200
        # A team key may read its users' entities, not rewrite them (only their user's key or an admin may).
        r = await as_team.patch(f"/v1/entities/{amys['fact']['subject_id']}", json={"name": "Renamed"})
        assert r.status_code == 404
    amy_key = (await c.post("/v1/keys", json={"name": "amy", "user_id": amy["id"]})).json()["api_key"]
    async with client_for(app, amy_key) as as_amy:
        # The org's shared entities are not hers to rename, merge or split.
        acme = shared["fact"]["subject_id"]
        assert (await as_amy.patch(f"/v1/entities/{acme}", json={"name": "Evil Corp"})).status_code == 404
        r = await as_amy.post(f"/v1/entities/{amys['fact']['subject_id']}/merge", json={"entity_ids": [acme]})
        assert r.status_code == 404
        assert (await as_amy.post(f"/v1/entities/{acme}/split", json={"name": "Acme2"})).status_code == 404
        r = await as_amy.patch(f"/v1/entities/{amys['fact']['subject_id']}", json={"aliases": ["A."]})
        assert r.status_code == 200
    assert (await c.get(f"/v1/entities/{acme}")).json()["name"] == "Acmet"

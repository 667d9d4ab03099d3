"""Erasure leaves no content and no linkable id behind, checked the way an auditor would: build a subject as
users build one (messages extracted by the worker, memories changed, facts, an entity renamed, a document, a
repository, a narrative, a key of their own, searches that log access, webhooks delivered), erase it, then
read every text, JSON, uuid and array column of every table in the ``public`` and ``procrastinate`` schemas
(from the catalog, so a table added later is read too: :func:`scan`) for its ids and a string only it ever
wrote. Each kind of subject (user, agent, session, document, repository) is erased so, with a receipt that
matches its audit row; what others hold (a shared entity, another's memory) stays.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from engramdb.config import Settings
from engramdb.schemas.erasure import ErasureReceipt, receipt_sha256
from engramdb.sdk import AsyncClient
from engramdb.services.core.caller import Caller
from tests.conftest import Org, OrgFactory, assert_problem, client_for
from tests.jobs.conftest import worker  # noqa: F401  (the extraction worker, for this module too)
from tests.webhook_listener import Listener

pytestmark = pytest.mark.usefixtures("worker")

MARK = "zebra-quasar-7731"  # written only by the user who is erased
# Column types whose text can hold a string or an id (vectors and bytes cannot).
_READABLE = """
  SELECT n.nspname, c.relname, a.attname FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_type ty ON ty.oid = a.atttypid LEFT JOIN pg_type el ON el.oid = ty.typelem AND ty.typcategory = 'A'
  WHERE n.nspname IN ('public', 'procrastinate') AND c.relkind IN ('r', 'p') AND NOT c.relispartition
    AND a.attnum > 0 AND NOT a.attisdropped
    AND (coalesce(el.typcategory, ty.typcategory) = 'S'
         OR coalesce(el.typname, ty.typname) IN ('json', 'jsonb', 'uuid', 'tsvector'))
  ORDER BY 1, 2, 3"""


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    # The listener is on 127.0.0.1; a retry, should one be needed, comes within the test.
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        webhook_retry_base_s=0.05,
        webhook_max_attempts=3,
        webhook_timeout_s=5,
        webhook_allow_networks=["127.0.0.1/32"],
    )


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def scan(database_url: str, needles: set[str]) -> dict[str, set[str]]:
    """Every ``schema.table.column`` whose text holds one of ``needles`` (case-insensitive) → which."""
    wanted = sorted({n.lower() for n in needles})
    patterns = [f"%{n}%" for n in wanted]
    found: dict[str, set[str]] = {}
    with psycopg.connect(database_url) as conn:
        for schema, table, column in conn.execute(_READABLE).fetchall():
            query = sql.SQL("SELECT DISTINCT lower({col}::text) FROM {tbl} WHERE lower({col}::text) LIKE ANY(%s)")
            rows = conn.execute(
                query.format(col=sql.Identifier(column), tbl=sql.Identifier(schema, table)), (patterns,)
            ).fetchall()
            hits = {n for (text,) in rows for n in wanted if n in text}
            if hits:
                found[f"{schema}.{table}.{column}"] = hits
    return found


def owned_ids(database_url: str, user_id: str) -> dict[str, set[str]]:
    """The ids of everything the user owns or wrote, read from the database itself (not from the API)."""
    queries = {
        "session": "SELECT id FROM session WHERE user_id = %(u)s",
        "message": "SELECT id FROM message WHERE user_id = %(u)s"
        " OR session_id IN (SELECT id FROM session WHERE user_id = %(u)s)",
        "memory": "SELECT id FROM memory WHERE user_id = %(u)s",
        "fact": "SELECT id FROM fact WHERE user_id = %(u)s",
        "entity": "SELECT id FROM entity WHERE user_id = %(u)s",
        "document": "SELECT id FROM document WHERE user_id = %(u)s",
        "repository": "SELECT id FROM repository WHERE user_id = %(u)s",
        "chunk": "SELECT id FROM chunk WHERE user_id = %(u)s",
        "narrative": "SELECT id FROM user_narrative WHERE user_id = %(u)s",
        "api_key": "SELECT id FROM api_key WHERE user_id = %(u)s",
        "job": "SELECT id FROM job WHERE user_id = %(u)s"
        " OR session_id IN (SELECT id FROM session WHERE user_id = %(u)s)",
        "task": "SELECT id FROM task WHERE user_id = %(u)s",
    }
    with psycopg.connect(database_url) as conn:
        return {kind: {str(r[0]) for r in conn.execute(q, {"u": user_id}).fetchall()} for kind, q in queries.items()}


def rows(database_url: str, query: str, **params: Any) -> set[str]:
    """The first column of ``query``'s rows, as text (ids read from the database itself)."""
    with psycopg.connect(database_url) as conn:
        return {str(r[0]) for r in conn.execute(query, params).fetchall()}


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _erase(app: Any, org: Org, kind: str, subject_id: str) -> dict[str, Any]:
    """Erase through the SDK (``client.<plural>.erase``), as a client would; the receipt as the API sent it."""
    async with AsyncClient("http://engram.test", org.key, transport=httpx.ASGITransport(app=app)) as client:
        resource = {
            "agent": client.agents,
            "session": client.sessions,
            "document": client.documents,
            "repository": client.repositories,
        }[kind]
        receipt: ErasureReceipt = await resource.erase(subject_id)
    return receipt.model_dump(mode="json")


async def _matches_its_audit_row(org: Org, receipt: dict[str, Any], action: str) -> None:
    """The receipt's hash is over its own fields, and the audit row of the erasure holds the same: the
    pseudonym as entity_id, the counts, the hash, and the erasure's time as created_at."""
    parsed = ErasureReceipt.model_validate(receipt)
    assert parsed.matches(org.id) and not parsed.matches(uuid.uuid4())
    audit = (await _ok(await org.client.get("/v1/audit", params={"action": action})))["data"]
    (row,) = [a for a in audit if a["entity_id"] == receipt["subject"]["pseudonym"]]
    assert row["details"] == {"counts": receipt["counts"], "receipt_sha256": receipt["receipt_sha256"]}
    stamp = ErasureReceipt.model_validate({**receipt, "erased_at": row["created_at"]}).erased_at
    assert receipt_sha256(org.id, row["entity_id"], stamp, row["details"]["counts"]) == receipt["receipt_sha256"]


async def _settled(database_url: str, org: Org, *, timeout_s: float = 30.0) -> None:
    """Wait until the org has no pending webhook delivery and no unfinished job."""
    deadline = time.monotonic() + timeout_s
    while True:
        with psycopg.connect(database_url) as conn:
            busy = conn.execute(
                "SELECT (SELECT count(*) FROM webhook_delivery WHERE org_id = %(o)s AND status = 'pending')"
                " + (SELECT count(*) FROM job WHERE org_id = %(o)s AND status IN ('queued', 'running'))",
                {"o": org.id},
            ).fetchone()
        if busy == (0,):
            return
        assert time.monotonic() < deadline, f"still busy: {busy}"
        await asyncio.sleep(0.05)


async def _build(app: Any, org: Org, listener: Listener) -> tuple[dict[str, Any], dict[str, Any]]:
    """The user to erase (everything names ``MARK``) and a keeper who shares a session with them."""
    c = org.client
    await _ok(await c.post("/v1/webhooks", json={"url": listener.url("/all"), "event_types": ["*"]}), 201)
    user = await _ok(
        await c.post(
            "/v1/users",
            json={"external_id": f"ext-{MARK}", "display_name": f"Zed {MARK}", "email": f"{MARK}@example.com"},
        ),
        201,
    )
    keeper = await _ok(await c.post("/v1/users", json={"external_id": "keeper"}), 201)
    uid = user["id"]

    session = await _ok(
        await c.post("/v1/sessions", json={"user_id": uid, "title": f"chat {MARK}", "metadata": {"k": MARK}}), 201
    )
    turns = [
        {"role": "user", "name": "Zed", "content": f"I moved to Lisbon last month. My code word is {MARK}."},
        {"role": "user", "name": "Zed", "content": f"My sister Anna lives in Boston and she calls me {MARK}."},
    ]
    r = await c.post(f"/v1/sessions/{session['id']}/messages", params={"wait": "true"}, json={"messages": turns})
    assert (await _ok(r, 201))["job"]["status"] == "succeeded"
    # The user also speaks in the keeper's session (their message goes; the keeper's stays).
    shared = await _ok(await c.post("/v1/sessions", json={"user_id": keeper["id"]}), 201)
    turns = [
        {"role": "user", "name": "Kim", "content": "I keep bees in the garden."},
        {"role": "user", "name": "Zed", "user_id": uid, "content": f"I work at Acme as {MARK}."},
    ]
    r = await c.post(f"/v1/sessions/{shared['id']}/messages", params={"wait": "true"}, json={"messages": turns})
    assert (await _ok(r, 201))["job"]["status"] == "succeeded"
    # The keeper's memory drawn from the user's session outlives it (unlinked).
    await _ok(
        await c.post(
            "/v1/memories", json={"user_id": keeper["id"], "content": "Kim likes honey", "session_id": session["id"]}
        ),
        201,
    )

    memory = await _ok(
        await c.post(
            "/v1/memories",
            json={"user_id": uid, "content": f"Zed's locker code is {MARK}", "tags": [MARK], "metadata": {"m": MARK}},
        ),
        201,
    )
    await _ok(await c.patch(f"/v1/memories/{memory['id']}", json={"content": f"Zed's locker code is {MARK}!"}))
    await _ok(await c.post(f"/v1/memories/{memory['id']}/state", json={"state": "archived", "reason": MARK}))
    await _ok(await c.post(f"/v1/memories/{memory['id']}/state", json={"state": "active"}))
    fact = {"subject": f"Zed {MARK}", "predicate": "owns", "object": "a red kayak", "user_id": uid}
    made = await _ok(await c.post("/v1/facts", json=fact), 201)
    entity = made["fact"]["subject_id"]
    await _ok(await c.patch(f"/v1/entities/{entity}", json={"name": f"Zedd {MARK}"}))
    body = {"content": f"# Notes of {MARK}\n\nThe kayak is red.", "path": f"notes/{MARK}.md", "user_id": uid}
    await _ok(await c.post("/v1/documents", json=body), 201)
    repo = await _ok(await c.post("/v1/repositories", json={"name": f"repo-{MARK}", "user_id": uid}), 201)
    files = [{"path": f"{MARK}/stars.md", "content": f"# Stars\n\n{MARK} sees Orion in winter."}]
    await _ok(await c.post(f"/v1/repositories/{repo['id']}/files", json={"files": files}))
    r = await c.post(f"/v1/users/{uid}/narrative", params={"wait": "true"})
    assert (await _ok(r, 202))["status"] == "succeeded"

    # A key of the user's own, used: its writes are audited under its id; its searches log access.
    key = await _ok(await c.post("/v1/keys", json={"name": f"key-{MARK}", "user_id": uid}), 201)
    async with client_for(app, key["api_key"]) as as_user:
        await _ok(await as_user.post("/v1/memories", json={"content": f"{MARK} prefers tea"}), 201)
        hits = await _ok(await as_user.post("/v1/search", json={"query": "locker code", "types": ["memories"]}))
        assert hits["results"]
    assert await app.state.runtime.access.flush() > 0
    return user, keeper


async def test_erasing_a_user_leaves_no_content_and_no_linkable_id_and_gives_a_receipt(  # type: ignore[no-untyped-def]
    app, org: Org, listener: Listener, database_url: str
) -> None:
    user, keeper = await _build(app, org, listener)
    uid = user["id"]
    await _ok(await org.client.post("/v1/tasks", json={"title": f"call {MARK}", "user_id": uid}), 201)
    await _settled(database_url, org)
    owned = owned_ids(database_url, uid)
    ids = {uid, *(i for group in owned.values() for i in group)}
    for kind in ("session", "message", "memory", "fact", "entity", "document", "narrative", "api_key", "job", "task"):
        assert owned[kind], f"the user has no {kind}: the scan would prove nothing"
    before = scan(database_url, {MARK, *ids})
    # The scan reaches every place the user's data lives, so it would see what erasure left behind.
    for place in (
        "public.message.content",
        "public.memory.content",
        "public.memory_history.new_values",
        "public.fact.statement",
        "public.entity.name",
        "public.document.content",
        "public.chunk.content",
        "public.user_narrative.content",
        "public.session.title",
        "public.task.title",
        "public.audit_log.details",
        "public.audit_log.entity_id",
        "public.memory_access_log.memory_id",
        "public.job.user_id",
        "public.webhook_delivery.payload",
        "procrastinate.procrastinate_jobs.args",
        "procrastinate.procrastinate_jobs.lock",
    ):
        assert place in before, f"nothing of the user's in {place} before erasure"

    retry = {"Idempotency-Key": "erase-the-user-once"}
    receipt = await _ok(await org.client.post(f"/v1/users/{uid}/erase", headers=retry))
    await _settled(database_url, org)  # the user.erased delivery names the user until it is sent

    assert scan(database_url, {MARK, *ids}) == {}
    # The receipt counts what went, table by table, and names the user only by the erasure's pseudonym.
    pseudonym = receipt["subject"]["pseudonym"]
    assert receipt["subject"] == {"kind": "user", "pseudonym": pseudonym} and pseudonym not in ids
    counts = receipt["counts"]
    for table, kind in (("session", "session"), ("message", "message"), ("memory", "memory"), ("fact", "fact")):
        assert counts[table] == len(owned[kind]), table
    for table, kind in (("document", "document"), ("chunk", "chunk"), ("user_narrative", "narrative")):
        assert counts[table] == len(owned[kind]), table
    for table, kind in (("repository", "repository"), ("api_key", "api_key"), ("job", "job"), ("task", "task")):
        assert counts[table] == len(owned[kind]), table
    assert counts["entity"] >= len(owned["entity"]) and counts["user_account"] == 1
    assert counts["memory_access_log"] > 0 and counts["memory_history"] > len(owned["memory"])
    await _matches_its_audit_row(org, receipt, "user.erased")
    # Sent again with its Idempotency-Key, the erasure answers the same receipt (the first answer is kept).
    again = await org.client.post(f"/v1/users/{uid}/erase", headers=retry)
    assert again.json() == receipt and again.headers["idempotent-replayed"] == "true"
    assert (await org.client.post(f"/v1/users/{uid}/erase")).status_code == 404

    # The audit trail still says what happened, to whom (one pseudonym), and when.
    audit = (await _ok(await org.client.get("/v1/audit", params={"limit": 200})))["data"]
    rewritten = [a for a in audit if a["entity_id"] == pseudonym]
    assert {a["action"] for a in rewritten} >= {
        "user.created",
        "session.created",
        "messages.added",
        "memory.created",
        "memory.updated",
        "memory.state_changed",
        "fact.add",
        "entity.updated",
        "document.created",
        "repository.created",
        "api_key.created",
        "task.created",
        "user.erased",
    }
    assert all(a["details"] == {"redacted": True} for a in rewritten if a["action"] != "user.erased")
    assert {a["key_id"] for a in audit if a["actor"] == "erased"} == {pseudonym}
    # The user.erased event reached its endpoint with the real id and the receipt, before the log forgot it.
    sent = [json.loads(r.body) for r in listener.received("/all")]
    (event,) = [e for e in sent if e["type"] == "user.erased"]
    assert event["data"] == {"object": "user", "action": "erased", "user": {"id": uid}, "receipt": receipt}
    # The keeper's data is intact, and tells nothing about the session it came from.
    kept = (await _ok(await org.client.get("/v1/memories", params={"user_id": keeper["id"]})))["data"]
    assert "Kim likes honey" in {m["content"] for m in kept}


async def test_deleting_a_user_is_the_same_erasure_audited_as_user_deleted(org: Org, database_url: str) -> None:
    mark = "vole-saffron-9023"
    c = org.client
    user = await _ok(await c.post("/v1/users", json={"external_id": f"ext-{mark}"}), 201)
    session = await _ok(await c.post("/v1/sessions", json={"user_id": user["id"], "title": mark}), 201)
    turns = [{"role": "user", "content": f"My badge number is {mark}."}]
    await _ok(await c.post(f"/v1/sessions/{session['id']}/messages", json={"messages": turns}), 201)
    memory = await _ok(await c.post("/v1/memories", json={"user_id": user["id"], "content": f"badge {mark}"}), 201)
    await _settled(database_url, org)
    messages = rows(database_url, "SELECT id FROM message WHERE session_id = %(s)s", s=session["id"])
    memories = rows(database_url, "SELECT id FROM memory WHERE user_id = %(u)s", u=user["id"])
    assert memory["id"] in memories
    ids = {user["id"], session["id"], *messages, *memories}

    assert (await c.delete(f"/v1/users/{user['id']}")).status_code == 204
    await _settled(database_url, org)

    assert scan(database_url, {mark, *ids}) == {}
    # No receipt is answered, but the audit row holds one's counts and hash, which check out.
    (row,) = (await _ok(await c.get("/v1/audit", params={"action": "user.deleted"})))["data"]
    counts = row["details"]["counts"]
    assert counts["user_account"] == 1 and counts["message"] == len(messages) and counts["memory"] == len(memories)
    stamp = ErasureReceipt.model_validate(
        {
            "subject": {"kind": "user", "pseudonym": row["entity_id"]},
            "erased_at": row["created_at"],
            "counts": counts,
            "receipt_sha256": row["details"]["receipt_sha256"],
        }
    )
    assert stamp.matches(org.id)


async def test_purging_a_memory_leaves_no_trace_of_its_text(  # type: ignore[no-untyped-def]
    app, org: Org, listener: Listener, database_url: str
) -> None:
    secret = "okapi-nebula-4417"
    c = org.client
    await _ok(await c.post("/v1/webhooks", json={"url": listener.url("/purge"), "event_types": ["*"]}), 201)
    user = await _ok(await c.post("/v1/users", json={"external_id": "purger", "display_name": "Pat"}), 201)
    uid = user["id"]
    gone = await _ok(
        await c.post("/v1/memories", json={"user_id": uid, "content": f"Pat's alarm code is {secret}"}), 201
    )
    await _ok(await c.post(f"/v1/memories/{gone['id']}/state", json={"state": "paused", "reason": secret}))
    await _ok(await c.post(f"/v1/memories/{gone['id']}/state", json={"state": "active"}))
    await _ok(await c.post("/v1/memories", json={"user_id": uid, "content": "Pat plays the cello"}), 201)
    r = await c.post(f"/v1/users/{uid}/narrative", params={"wait": "true"})
    assert (await _ok(r, 202))["status"] == "succeeded"
    assert secret in (await _ok(await c.get(f"/v1/users/{uid}/narrative")))["content"]
    assert (await _ok(await c.post("/v1/search", json={"query": "alarm code", "types": ["memories"]})))["results"]
    assert await app.state.runtime.access.flush() > 0
    await _settled(database_url, org)
    before = scan(database_url, {secret, gone["id"]})
    for place in ("public.user_narrative.content", "public.audit_log.details", "public.memory_access_log.memory_id"):
        assert place in before, f"nothing of the memory's in {place} before the purge"

    assert (await c.delete(f"/v1/memories/{gone['id']}", params={"hard": "true"})).status_code == 204
    # A search that found it just before, flushed just after, logs nothing about it.
    app.state.runtime.access.record(Caller(org.id, frozenset({"read"})), [(uuid.UUID(gone["id"]), 0.5)])
    assert await app.state.runtime.access.flush() == 0
    await _settled(database_url, org)  # the narrative is written again, without the purged memory

    assert scan(database_url, {secret}) == {}
    left = scan(database_url, {gone["id"]})
    # Its id stays only where the log says it was purged: the audit trail and the (redacted) deliveries.
    assert set(left) <= {"public.audit_log.entity_id", "public.webhook_delivery.payload"}, left
    narrative = await _ok(await c.get(f"/v1/users/{uid}/narrative"))
    assert "cello" in narrative["content"] and secret not in narrative["content"]
    audit = (await _ok(await c.get("/v1/audit", params={"entity_id": gone["id"]})))["data"]
    assert [a["action"] for a in audit][0] == "memory.purged"
    assert all(a["details"] in ({}, {"redacted": True}) for a in audit)


async def test_deleting_documents_leaves_no_name_of_them(org: Org, database_url: str) -> None:
    names = ["kiwi-garnet-5120", "lynx-opal-2291", "moth-beryl-8843"]  # one path each: deleted, pruned, with repo
    c = org.client
    alone = await _ok(await c.post("/v1/documents", json={"content": "# A\n\nText.", "path": f"{names[0]}.md"}), 201)
    repo = await _ok(await c.post("/v1/repositories", json={"name": f"repo-{names[2]}"}), 201)
    files = [
        {"path": f"{names[1]}.md", "content": "# B\n\nMore text."},
        {"path": f"{names[2]}.md", "content": "# C\n\nOther text."},
    ]
    await _ok(await c.post(f"/v1/repositories/{repo['id']}/files", json={"files": files}))
    assert set(scan(database_url, set(names))) >= {"public.audit_log.details", "public.document.path"}

    assert (await c.delete(f"/v1/documents/{alone['document']['id']}")).status_code == 204
    pruned = await c.post(f"/v1/repositories/{repo['id']}/prune", json={"keep_paths": [f"{names[2]}.md"]})
    assert (await _ok(pruned))["deleted_paths"] == [f"{names[1]}.md"]  # told to the caller, not kept
    assert (await c.delete(f"/v1/repositories/{repo['id']}")).status_code == 204

    assert scan(database_url, set(names)) == {}
    audit = (await _ok(await c.get("/v1/audit", params={"limit": 200})))["data"]
    assert {a["action"] for a in audit} >= {"document.deleted", "repository.pruned", "repository.deleted"}


async def test_erasing_an_agent_takes_what_it_holds_and_leaves_what_another_agent_shares(
    app: Any, org: Org, listener: Listener, database_url: str
) -> None:
    mark = "quokka-umbra-5521"
    c = org.client
    await _ok(await c.post("/v1/webhooks", json={"url": listener.url("/agent"), "event_types": ["agent.erased"]}), 201)
    hook = {"url": listener.url("/invalidated"), "event_types": ["memory.invalidated"]}  # told of it too
    await _ok(await c.post("/v1/webhooks", json=hook), 201)
    agent = await _ok(await c.post("/v1/agents", json={"name": f"agent-{mark}", "description": mark}), 201)
    other = await _ok(await c.post("/v1/agents", json={"name": "helper"}), 201)
    user = await _ok(await c.post("/v1/users", json={"external_id": "agent-user"}), 201)
    aid = agent["id"]
    session = await _ok(
        await c.post("/v1/sessions", json={"user_id": user["id"], "agent_id": aid, "title": f"help {mark}"}), 201
    )
    turns = [{"role": "assistant", "content": f"Noted: the locker is {mark}."}]
    await _ok(await c.post(f"/v1/sessions/{session['id']}/messages", json={"messages": turns}), 201)
    memory = {"user_id": user["id"], "agent_id": aid, "content": f"The agent learned {mark}"}
    await _ok(await c.post("/v1/memories", json=memory), 201)
    # Both agents speak of Orbital Works (one entity of the organization's); only this one of the dock.
    fact = {"subject": "Orbital Works", "predicate": "based_in", "object": f"Dock {mark}", "object_is_entity": True}
    mine = await _ok(await c.post("/v1/facts", json={**fact, "agent_id": aid}), 201)
    fact = {"subject": "Orbital Works", "predicate": "employs", "object": "300 people", "agent_id": other["id"]}
    theirs = await _ok(await c.post("/v1/facts", json=fact), 201)
    shared = mine["fact"]["subject_id"]
    assert theirs["fact"]["subject_id"] == shared
    repo = await _ok(await c.post("/v1/repositories", json={"name": f"repo-{mark}", "agent_id": aid}), 201)
    files = [{"path": f"{mark}.md", "content": f"# Runbook\n\n{mark} opens the dock."}]
    await _ok(await c.post(f"/v1/repositories/{repo['id']}/files", json={"files": files}))
    task = await _ok(await c.post("/v1/tasks", json={"title": "restock", "created_by": aid}), 201)
    key = await _ok(await c.post("/v1/keys", json={"name": f"key-{mark}", "agent_id": aid}), 201)
    async with client_for(app, key["api_key"]) as as_agent:
        note = {"to_agent_id": other["id"], "payload": {"note": mark}}
        await _ok(await as_agent.post("/v1/agent-messages", json=note), 201)
    await _settled(database_url, org)
    held = {
        kind: rows(database_url, query, a=aid)
        for kind, query in {
            "session": "SELECT id FROM session WHERE agent_id = %(a)s",
            "message": "SELECT id FROM message WHERE agent_id = %(a)s OR session_id IN"
            " (SELECT id FROM session WHERE agent_id = %(a)s)",
            "memory": "SELECT id FROM memory WHERE agent_id = %(a)s",
            "fact": "SELECT id FROM fact WHERE agent_id = %(a)s",
            "document": "SELECT id FROM document WHERE agent_id = %(a)s",
            "chunk": "SELECT id FROM chunk WHERE agent_id = %(a)s",
            "agent_message": "SELECT id FROM agent_message WHERE from_agent_id = %(a)s",
        }.items()
    }
    assert all(held.values()), held
    ids = {aid, repo["id"], key["id"], mine["fact"]["object_id"], *(i for group in held.values() for i in group)}
    assert {"public.agent_message.payload", "public.task.created_by"} <= set(scan(database_url, {mark, aid}))

    receipt = await _erase(app, org, "agent", aid)
    await _settled(database_url, org)

    assert scan(database_url, {mark, *ids}) == {}
    assert receipt["subject"]["kind"] == "agent"
    counts = receipt["counts"]
    assert {k: counts[k] for k in ("agent", "session", "memory", "fact", "repository", "api_key", "agent_message")} == {
        "agent": 1,
        "session": 1,
        "memory": 1,
        "fact": 1,
        "repository": 1,
        "api_key": 1,
        "agent_message": 1,
    }
    assert counts["message"] == len(held["message"]) and counts["entity"] == 1  # the dock, no one else's
    await _matches_its_audit_row(org, receipt, "agent.erased")
    # What the other agent holds stays: its fact, and the entity both named; the task lost its creator.
    assert (await _ok(await c.get(f"/v1/facts/{theirs['fact']['id']}")))["subject_id"] == shared
    assert (await _ok(await c.get(f"/v1/entities/{shared}")))["name"] == "Orbital Works"
    assert (await _ok(await c.get(f"/v1/tasks/{task['id']}")))["created_by"] is None
    (event,) = [json.loads(r.body) for r in listener.received("/agent")]
    assert event["data"] == {"object": "agent", "action": "erased", "agent": {"id": aid}, "receipt": receipt}
    assert [json.loads(r.body)["type"] for r in listener.received("/invalidated")] == ["agent.erased"]


async def test_erasing_a_session_takes_what_was_drawn_from_it_and_a_fresh_narrative_follows(
    app: Any, org: Org, database_url: str
) -> None:
    mark = "heron-cobalt-3307"
    c = org.client
    user = await _ok(await c.post("/v1/users", json={"external_id": "traveller", "display_name": "Tess"}), 201)
    uid = user["id"]
    gone = await _ok(await c.post("/v1/sessions", json={"user_id": uid, "title": f"trip {mark}"}), 201)
    kept = await _ok(await c.post("/v1/sessions", json={"user_id": uid}), 201)
    # Tess moves: the erased session's fact closes the kept session's (whose closed version names it).
    turns = [{"role": "user", "content": "I live in Denver."}]
    r = await c.post(f"/v1/sessions/{kept['id']}/messages", params={"wait": "true"}, json={"messages": turns})
    assert (await _ok(r, 201))["job"]["status"] == "succeeded"
    turns = [{"role": "user", "content": f"I moved to Boston. My trip code is {mark}."}]
    r = await c.post(f"/v1/sessions/{gone['id']}/messages", params={"wait": "true"}, json={"messages": turns})
    assert (await _ok(r, 201))["job"]["status"] == "succeeded"
    drawn = {"user_id": uid, "session_id": gone["id"], "content": f"Tess's trip code is {mark}"}
    await _ok(await c.post("/v1/memories", json=drawn), 201)
    r = await c.post(f"/v1/users/{uid}/narrative", params={"wait": "true"})
    assert (await _ok(r, 202))["status"] == "succeeded"
    assert mark in (await _ok(await c.get(f"/v1/users/{uid}/narrative")))["content"]
    await _settled(database_url, org)
    s = gone["id"]
    held = {
        "message": rows(database_url, "SELECT id FROM message WHERE session_id = %(s)s", s=s),
        "memory": rows(database_url, "SELECT id FROM memory WHERE session_id = %(s)s", s=s),
        "fact": rows(database_url, "SELECT id FROM fact WHERE session_id = %(s)s", s=s),
        "job": rows(database_url, "SELECT id FROM job WHERE session_id = %(s)s", s=s),
    }
    assert all(held.values()), held
    boston = rows(database_url, "SELECT id FROM entity WHERE user_id = %(u)s AND name = 'Boston'", u=uid)
    tess = rows(database_url, "SELECT id FROM entity WHERE user_id = %(u)s AND name = 'Tess'", u=uid)
    assert boston and tess, "extraction named no Boston and Tess: the test would prove nothing"
    closed = "SELECT id FROM fact WHERE session_id = %(k)s AND invalidated_by IN (SELECT id FROM fact WHERE {})"
    closed = closed.format("session_id = %(s)s")
    assert rows(database_url, closed, k=kept["id"], s=s), "no fact of the kept session was closed by the erased one"
    ids = {s, *boston, *(i for group in held.values() for i in group)}

    receipt = await _erase(app, org, "session", s)
    await _settled(database_url, org)  # the fresh narrative is written

    assert scan(database_url, {mark, *ids}) == {}
    counts = receipt["counts"]
    assert counts["session"] == 1 and counts["message"] == len(held["message"])
    assert counts["memory"] == len(held["memory"]) and counts["fact"] == len(held["fact"])
    assert counts["job"] == len(held["job"]) and counts["user_narrative"] >= 1
    await _matches_its_audit_row(org, receipt, "session.erased")
    # Tess is still named by the other session's facts; the user, that session and a new narrative stay.
    assert rows(database_url, "SELECT id FROM entity WHERE user_id = %(u)s AND name = 'Tess'", u=uid) == tess
    assert (await _ok(await c.get(f"/v1/sessions/{kept['id']}")))["message_count"] == 1
    narrative = await _ok(await c.get(f"/v1/users/{uid}/narrative"))
    assert "Denver" in narrative["content"] and mark not in narrative["content"]


async def test_erasing_documents_and_a_repository_takes_their_ingests_too(
    app: Any, org: Org, database_url: str
) -> None:
    mark = "ibis-topaz-6612"
    c = org.client
    queued = await _ok(await c.post("/v1/documents?background=true", json={"content": f"# {mark}\n\nText."}), 202)
    await _settled(database_url, org)
    job = await _ok(await c.get(f"/v1/jobs/{queued['job']['id']}"))
    alone = job["result"]["document_id"]
    repo = await _ok(await c.post("/v1/repositories", json={"name": "handbook"}), 201)
    files = [
        {"path": f"a-{mark}.md", "content": f"# A\n\n{mark} text."},
        {"path": "b.md", "content": f"# B\n\nMore about {mark}."},
        {"path": "c.md", "content": "# C\n\nKept until the repository goes."},
    ]
    await _ok(await c.post(f"/v1/repositories/{repo['id']}/files", json={"files": files}))
    docs = {d["path"]: d["id"] for d in (await _ok(await c.get("/v1/documents", params={"limit": 10})))["data"]}

    receipt = await _erase(app, org, "document", alone)
    assert receipt["counts"]["document"] == 1 and receipt["counts"]["job"] == 1 and receipt["counts"]["chunk"] >= 1
    await _matches_its_audit_row(org, receipt, "document.erased")
    receipt = await _erase(app, org, "document", docs[f"a-{mark}.md"])
    assert receipt["counts"]["document"] == 1
    assert (await _ok(await c.get(f"/v1/repositories/{repo['id']}")))["document_count"] == 2
    receipt = await _erase(app, org, "repository", repo["id"])
    assert receipt["counts"]["repository"] == 1 and receipt["counts"]["document"] == 2
    await _matches_its_audit_row(org, receipt, "repository.erased")

    assert scan(database_url, {mark, alone, queued["job"]["id"], repo["id"], *docs.values()}) == {}


async def test_an_erasure_is_refused_outside_the_key_under_a_hold_and_without_admin(
    app: Any, org: Org, make_org: OrgFactory, database_url: str
) -> None:
    c = org.client
    user = await _ok(await c.post("/v1/users", json={"external_id": "held"}), 201)
    session = await _ok(await c.post("/v1/sessions", json={"user_id": user["id"]}), 201)
    agent = await _ok(await c.post("/v1/agents", json={"name": "held-agent"}), 201)
    doc = await _ok(await c.post("/v1/documents", json={"content": "# D\n\nText.", "user_id": user["id"]}), 201)
    repo = await _ok(await c.post("/v1/repositories", json={"name": "held-repo"}), 201)
    paths = {
        "users": user["id"],
        "sessions": session["id"],
        "agents": agent["id"],
        "documents": doc["document"]["id"],
        "repositories": repo["id"],
    }
    stranger = await make_org()
    for plural, item in paths.items():  # another organization's ids are not found
        assert_problem(await stranger.client.post(f"/v1/{plural}/{item}/erase"), 404)
    assert_problem(await c.post(f"/v1/users/{uuid.uuid4()}/erase"), 404)
    assert_problem(await c.post("/v1/users/not-an-id/erase"), 422)
    writer = await _ok(await c.post("/v1/keys", json={"name": "writer", "scopes": ["read", "write"]}), 201)
    async with client_for(app, writer["api_key"]) as as_writer:
        assert_problem(await as_writer.post(f"/v1/sessions/{session['id']}/erase"), 403)
    # A legal hold on the user suspends the erasure of the user and of what holds their data.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO legal_hold (org_id, id, user_id, reason) VALUES (%s, %s, %s, 'litigation')",
            (org.id, uuid.uuid4(), user["id"]),
        )
    for plural in ("users", "sessions", "documents"):
        assert_problem(await c.post(f"/v1/{plural}/{paths[plural]}/erase"), 409)
    assert (await c.delete(f"/v1/users/{user['id']}")).status_code == 409
    assert (await _ok(await c.get(f"/v1/sessions/{session['id']}")))["id"] == session["id"]
    assert (await _ok(await c.post(f"/v1/repositories/{repo['id']}/erase")))["counts"] == {"repository": 1}

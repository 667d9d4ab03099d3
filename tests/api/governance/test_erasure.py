"""Erasure leaves no content and no linkable id behind, checked the way an auditor would: build a user as
users build one (messages extracted by the worker, memories changed, facts, an entity renamed, a document, a
repository, a narrative, a key of their own, searches that log access, webhooks delivered), delete them, then
read every text, JSON, uuid and array column of every table in the ``public`` and ``procrastinate`` schemas
(from the catalog, so a table added later is read too) for their ids and a string only they ever wrote."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from engramdb.config import Settings
from engramdb.services.core.caller import Caller
from tests.conftest import Org, client_for
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
    }
    with psycopg.connect(database_url) as conn:
        return {kind: {str(r[0]) for r in conn.execute(q, {"u": user_id}).fetchall()} for kind, q in queries.items()}


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


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


async def test_deleting_a_user_leaves_no_content_and_no_linkable_id(  # type: ignore[no-untyped-def]
    app, org: Org, listener: Listener, database_url: str
) -> None:
    user, keeper = await _build(app, org, listener)
    uid = user["id"]
    await _settled(database_url, org)
    owned = owned_ids(database_url, uid)
    ids = {uid, *(i for group in owned.values() for i in group)}
    for kind in ("session", "message", "memory", "fact", "entity", "document", "narrative", "api_key", "job"):
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
        "public.audit_log.details",
        "public.audit_log.entity_id",
        "public.memory_access_log.memory_id",
        "public.job.user_id",
        "public.webhook_delivery.payload",
        "procrastinate.procrastinate_jobs.args",
        "procrastinate.procrastinate_jobs.lock",
    ):
        assert place in before, f"nothing of the user's in {place} before erasure"

    assert (await org.client.delete(f"/v1/users/{uid}")).status_code == 204
    await _settled(database_url, org)  # the user.deleted delivery names the user until it is sent

    assert scan(database_url, {MARK, *ids}) == {}

    # The audit trail still says what happened, to whom (one pseudonym), and when.
    audit = (await _ok(await org.client.get("/v1/audit", params={"limit": 200})))["data"]
    (deleted,) = [a for a in audit if a["action"] == "user.deleted"]
    pseudonym = deleted["entity_id"]
    assert pseudonym not in ids
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
        "user.deleted",
    }
    assert all(a["details"] == {"redacted": True} for a in rewritten if a["action"] != "user.deleted")
    assert deleted["details"]["sessions"] == 1 and deleted["details"]["memories"] >= 2
    assert {a["key_id"] for a in audit if a["actor"] == "erased"} == {pseudonym}
    # The user.deleted event reached its endpoint with the real id, before the log forgot it.
    sent = [r.body for r in listener.received("/all")]
    assert any(b'"user.deleted"' in body and uid.encode() in body for body in sent)
    # The keeper's data is intact, and tells nothing about the session it came from.
    kept = (await _ok(await org.client.get("/v1/memories", params={"user_id": keeper["id"]})))["data"]
    assert "Kim likes honey" in {m["content"] for m in kept}


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

"""Webhooks below the API: the public signing helper, the outbox (who gets an event, atomic with the
change, one query when nobody listens), the events each service raises, and the delivery upkeep."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from engramdb.config import Settings
from engramdb.providers.extraction import Usage
from engramdb.services.core import events, jobs
from engramdb.services.webhooks import delivery, destinations
from engramdb.storage import queue
from engramdb.storage.database import Database
from engramdb.webhooks import InvalidSignature, generate_secret, sign, signed_headers, verify
from tests.conftest import Org, OrgFactory
from tests.webhook_listener import Listener


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    """The test listener is on 127.0.0.1: webhooks may reach it only when allowed."""
    return Settings(
        database_url=database_url, auto_migrate=False, key_touch_interval_s=0, webhook_allow_networks=["127.0.0.1/32"]
    )


# --- the public helper ---------------------------------------------------------------------------------

# The test vector published with the Standard Webhooks specification (and Svix's libraries).
VECTOR = {
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "timestamp": 1614265330,
    "body": '{"test": 2432232314}',
    "signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}


def _vector_headers(**changes: str) -> dict[str, str]:
    headers = {
        "webhook-id": str(VECTOR["id"]),
        "webhook-timestamp": str(VECTOR["timestamp"]),
        "webhook-signature": str(VECTOR["signature"]),
    }
    return {**headers, **changes}


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    v = VECTOR
    assert sign(str(v["secret"]), str(v["id"]), int(str(v["timestamp"])), str(v["body"])) == v["signature"]
    now = float(str(v["timestamp"])) + 10
    assert verify(str(v["secret"]), _vector_headers(), str(v["body"]), now=now) == {"test": 2432232314}
    # The secret without its prefix, bytes for the body, and headers in any case work too.
    upper = {k.upper(): val for k, val in _vector_headers().items()}
    raw = str(v["secret"]).removeprefix("whsec_")
    assert verify(raw, upper, str(v["body"]).encode(), now=now) == {"test": 2432232314}


def test_verify_refuses_a_stale_or_future_timestamp() -> None:
    ts = int(str(VECTOR["timestamp"]))
    secret, body = str(VECTOR["secret"]), str(VECTOR["body"])
    assert verify(secret, _vector_headers(), body, now=ts + 299)
    with pytest.raises(InvalidSignature, match="too far"):
        verify(secret, _vector_headers(), body, now=ts + 301)  # stale: a replayed capture
    with pytest.raises(InvalidSignature, match="too far"):
        verify(secret, _vector_headers(), body, now=ts - 301)  # from the future
    assert verify(secret, _vector_headers(), body, now=ts + 3000, tolerance_s=3600)
    with pytest.raises(InvalidSignature, match="whole number"):
        verify(secret, _vector_headers(**{"webhook-timestamp": "soon"}), body, now=ts)


def test_verify_refuses_a_tampered_body_a_wrong_secret_and_missing_headers() -> None:
    secret = generate_secret()
    body = b'{"type":"memory.created","timestamp":"2026-01-01T00:00:00Z","data":{"memory":{"id":"m1"}}}'
    headers = signed_headers([secret], "evt-1", body)
    assert verify(secret, headers, body)["data"]["memory"]["id"] == "m1"
    with pytest.raises(InvalidSignature, match="no signature"):
        verify(secret, headers, body.replace(b"m1", b"m2"))
    with pytest.raises(InvalidSignature, match="no signature"):
        verify(secret, {**headers, "webhook-id": "evt-2"}, body)  # the id is signed too
    with pytest.raises(InvalidSignature, match="no signature"):
        verify(generate_secret(), headers, body)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        with pytest.raises(InvalidSignature, match=f"missing header {name}"):
            verify(secret, {k: v for k, v in headers.items() if k != name}, body)
    assert issubclass(InvalidSignature, ValueError)


def test_any_one_of_several_signatures_is_enough() -> None:
    old, new = generate_secret(), generate_secret()
    headers = signed_headers([new, old], "evt-9", "{}")
    assert len(headers["webhook-signature"].split()) == 2
    assert verify(old, headers, "{}") == {} and verify(new, headers, "{}") == {}
    # Unknown versions are skipped, not trusted.
    value = sign(new, "evt-9", int(headers["webhook-timestamp"]), "{}").partition(",")[2]
    with pytest.raises(InvalidSignature):
        verify(new, {**headers, "webhook-signature": f"v1a,{value}"}, "{}")


def test_generated_secrets_are_whsec_and_32_random_bytes() -> None:
    made = {generate_secret() for _ in range(20)}
    assert len(made) == 20
    for secret in made:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_backoff_doubles_honours_retry_after_and_is_capped() -> None:
    s = Settings(webhook_retry_base_s=60)
    assert [delivery.backoff_s(s, n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert delivery.backoff_s(s, 1, retry_after_s=600) == 600
    assert delivery.backoff_s(s, 3, retry_after_s=5) == 240
    assert delivery.backoff_s(s, 30) == delivery.MAX_BACKOFF_S
    assert delivery.backoff_s(s, 1, retry_after_s=10**9) == delivery.MAX_BACKOFF_S


# --- the outbox ----------------------------------------------------------------------------------------


async def _hook(org: Org, event_types: list[str], *, enabled: bool = True, path: str = "/x") -> dict[str, Any]:
    body = {"url": f"http://127.0.0.1:9{path}", "event_types": event_types, "enabled": enabled}
    r = await org.client.post("/v1/webhooks", json=body)
    assert r.status_code == 201, r.text
    hook: dict[str, Any] = r.json()
    return hook


async def _events(org: Org, hook: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(event type, data) of the endpoint's deliveries, oldest first."""
    r = await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 200})
    assert r.status_code == 200, r.text
    return [(d["event_type"], d["payload"]["data"]) for d in reversed(r.json()["data"])]


def _queue_job(database_url: str, job_id: int) -> tuple[str, str, dict[str, Any]] | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT task_name, status, args FROM procrastinate.procrastinate_jobs WHERE id = %s", (job_id,)
        ).fetchone()
    return (row[0], row[1], row[2]) if row else None


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def test_without_endpoints_an_event_costs_one_query_and_writes_nothing(db: Database, org: Org) -> None:
    async with db.tenant(org.id) as conn:
        with _statements(db) as seen:
            assert await events.emit(conn, org_id=org.id, event_type="memory.created", data={"x": 1}) is None
    assert len(seen) == 1 and "webhook_endpoint" in seen[0]


async def test_an_event_goes_to_each_enabled_subscribed_endpoint(db: Database, org: Org, database_url: str) -> None:
    wanted = await _hook(org, ["memory.created"])
    everything = await _hook(org, ["*"])
    disabled = await _hook(org, ["memory.created"], enabled=False)
    other = await _hook(org, ["job.failed", "document.synced"])
    data = {"memory": {"id": uuid.uuid4()}, "when": time.time()}
    async with db.tenant(org.id) as conn:
        event_id = await events.emit(conn, org_id=org.id, event_type="memory.created", data=data)
    assert event_id is not None
    for hook in (wanted, everything):
        (delivery,) = (await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["data"]
        assert delivery["event_id"] == str(event_id) and delivery["status"] == "pending"
        assert delivery["payload"]["type"] == "memory.created"
        assert delivery["payload"]["data"]["memory"]["id"] == str(data["memory"]["id"])  # type: ignore[index]
        with psycopg.connect(database_url) as conn:
            (job_id,) = conn.execute(  # type: ignore[misc]
                "SELECT queue_job_id FROM webhook_delivery WHERE id = %s", (delivery["id"],)
            ).fetchone()
        job = _queue_job(database_url, job_id)
        assert job is not None
        assert job[:2] == (queue.DELIVER_WEBHOOK, "todo")
        assert job[2] == {"org_id": str(org.id), "delivery_id": delivery["id"]}
    for hook in (disabled, other):
        assert (await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["data"] == []


async def test_an_event_is_atomic_with_its_change(db: Database, org: Org, database_url: str) -> None:
    hook = await _hook(org, ["*"])

    def queued() -> int:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM procrastinate.procrastinate_jobs WHERE task_name = %s", (queue.DELIVER_WEBHOOK,)
            ).fetchone()
        return int(row[0]) if row else 0

    before = queued()
    with pytest.raises(RuntimeError):
        async with db.tenant(org.id) as conn:
            assert await events.emit(conn, org_id=org.id, event_type="job.failed", data={})
            raise RuntimeError("the change fails after the event was raised")
    assert await _events(org, hook) == []
    assert queued() == before


# --- the events each service raises --------------------------------------------------------------------


async def test_memory_events(org: Org) -> None:
    hook = await _hook(org, ["memory.created", "memory.updated", "memory.invalidated"])
    c = org.client
    memory = (await c.post("/v1/memories", json={"content": "Likes jazz"})).json()
    await c.patch(f"/v1/memories/{memory['id']}", json={"content": "Likes jazz and blues"})
    await c.delete(f"/v1/memories/{memory['id']}")
    await c.post(f"/v1/memories/{memory['id']}/state", json={"state": "active"})
    events = await _events(org, hook)
    assert events[1][1]["fields"] == ["content"] and events[1][1]["memory"]["content"] == "Likes jazz and blues"
    assert events[2][1]["memory"]["state"] == "deleted"
    await c.delete(f"/v1/memories/{memory['id']}", params={"hard": "true"})
    events = await _events(org, hook)
    assert [(e, d["action"]) for e, d in events] == [
        ("memory.created", "created"),
        ("memory.updated", "updated"),
        ("memory.invalidated", "deleted"),
        ("memory.updated", "state_changed"),
        ("memory.invalidated", "purged"),
    ]
    assert all(d["object"] == "memory" and d["memory"]["id"] == memory["id"] for _, d in events)
    assert "content" not in events[4][1]["memory"]  # an erasure sends no content out
    assert all(d["redacted"] is True and "content" not in d["memory"] for _, d in events[:4])  # nor keeps it


async def test_a_contradicted_or_retracted_fact_is_invalidated(org: Org) -> None:
    hook = await _hook(org, ["memory.invalidated"])
    c = org.client
    fact = {"subject": "Dana", "predicate": "lives_in", "single_valued": True}
    lisbon = (await c.post("/v1/facts", json={**fact, "object": "Lisbon"})).json()
    assert await _events(org, hook) == []
    porto = (await c.post("/v1/facts", json={**fact, "object": "Porto"})).json()
    assert porto["action"] == "INVALIDATE"
    ((kind, closed),) = await _events(org, hook)
    assert kind == "memory.invalidated" and closed["object"] == "fact" and closed["action"] == "closed"
    assert closed["fact"]["replaces_id"] == lisbon["fact"]["id"] and closed["fact"]["object"] == "Lisbon"
    assert closed["fact"]["invalidated_by"] == porto["fact"]["id"] and closed["fact"]["valid_until"] is not None
    assert (await c.delete(f"/v1/facts/{porto['fact']['id']}")).status_code == 200
    retracted = (await _events(org, hook))[-1][1]
    assert retracted["action"] == "retracted" and retracted["fact"]["id"] == porto["fact"]["id"]


async def test_document_writes_and_repository_syncs_raise_document_synced(org: Org) -> None:
    hook = await _hook(org, ["document.synced"])
    c = org.client
    doc = (await c.post("/v1/documents", json={"content": "# Notes\n\nfirst", "path": "notes.md"})).json()
    await c.patch(f"/v1/documents/{doc['document']['id']}", json={"content": "# Notes\n\nsecond"})
    repo = (await c.post("/v1/repositories", json={"name": "handbook"})).json()
    files = {"files": [{"path": "a.md", "content": "# A\n\nalpha"}]}
    assert (await c.post(f"/v1/repositories/{repo['id']}/files", json=files)).status_code == 200
    assert (await c.post(f"/v1/repositories/{repo['id']}/files", json=files)).status_code == 200  # unchanged
    events = await _events(org, hook)
    assert [(e, d["action"]) for e, d in events] == [
        ("document.synced", "created"),
        ("document.synced", "updated"),
        ("document.synced", "created"),
    ]
    first, _, synced = (d for _, d in events)
    assert first["document"]["id"] == doc["document"]["id"] and first["document"]["content"] is None
    assert synced["document"]["repository_id"] == repo["id"] and synced["document"]["path"] == "a.md"
    assert synced["chunks"]["added"] >= 1


async def test_a_finished_job_raises_job_succeeded_or_after_its_last_attempt_job_failed(db: Database, org: Org) -> None:
    hook = await _hook(org, ["job.succeeded", "job.failed"])
    async with db.tenant(org.id) as conn:
        ok = await jobs.enqueue(conn, org.id, queue.NARRATE, max_attempts=2)
        bad = await jobs.enqueue(conn, org.id, queue.NARRATE, max_attempts=2)
    async with db.tenant(org.id) as conn:
        await jobs.succeed(conn, org.id, ok, {"done": 1}, provider="offline", usage=Usage())
    await jobs.fail(db, org.id, bad, "boom", final=False)
    assert [e for e, _ in await _events(org, hook)] == ["job.succeeded"]  # a retried attempt is no event
    await jobs.fail(db, org.id, bad, "boom again", final=True)
    events = await _events(org, hook)
    assert [(e, d["job"]["id"], d["job"]["status"]) for e, d in events] == [
        ("job.succeeded", str(ok), "succeeded"),
        ("job.failed", str(bad), "failed"),
    ]
    assert events[1][1]["job"]["error"] == "boom again"


# --- delivery upkeep -----------------------------------------------------------------------------------


async def _delivery_row(database_url: str, delivery_id: str) -> dict[str, Any]:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute("SELECT * FROM webhook_delivery WHERE id = %s", (delivery_id,))
        names = [c.name for c in cur.description or []]
        row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


async def test_a_disabled_endpoint_is_not_sent_to_and_stale_jobs_do_nothing(
    db: Database, org: Org, settings: Settings, database_url: str
) -> None:
    hook = await _hook(org, ["*"])
    queued = (await org.client.post(f"/v1/webhooks/{hook['id']}/test")).json()
    row = await _delivery_row(database_url, queued["id"])
    delivery_id = uuid.UUID(queued["id"])
    # A job that is not the delivery's current one (replaced by a replay) leaves it alone.
    stale = await delivery.deliver(db, settings, org.id, delivery_id, queue_job_id=row["queue_job_id"] + 10**6)
    assert stale is None and (await _delivery_row(database_url, queued["id"]))["attempts"] == 0
    await org.client.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": False})
    done = await delivery.deliver(db, settings, org.id, delivery_id, queue_job_id=row["queue_job_id"])
    assert done is not None and done["status"] == "failed"
    after = (await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries/{queued['id']}")).json()
    assert after["status"] == "failed" and after["attempts"] == 1 and "disabled" in after["last_error"]
    # Finished: the same job run again (a retry after a crash) does nothing more.
    assert await delivery.deliver(db, settings, org.id, delivery_id, queue_job_id=row["queue_job_id"]) is None


async def test_a_pending_delivery_whose_queue_job_ended_is_queued_again(
    db: Database, org: Org, database_url: str
) -> None:
    hook = await _hook(org, ["*"])
    queued = (await org.client.post(f"/v1/webhooks/{hook['id']}/test")).json()
    old_job = (await _delivery_row(database_url, queued["id"]))["queue_job_id"]
    with psycopg.connect(database_url) as conn:
        conn.execute("SET search_path = procrastinate, public")  # procrastinate's triggers name tables bare
        conn.execute("DELETE FROM procrastinate_jobs WHERE id = %s", (old_job,))
        conn.execute(
            "UPDATE webhook_delivery SET next_attempt_at = now() - interval '1 hour' WHERE id = %s", (queued["id"],)
        )
    assert await delivery.requeue_orphans(db, quiet_s=60) == 1
    new_job = (await _delivery_row(database_url, queued["id"]))["queue_job_id"]
    assert new_job != old_job
    assert _queue_job(database_url, new_job) == (
        queue.DELIVER_WEBHOOK,
        "todo",
        {"org_id": str(org.id), "delivery_id": queued["id"]},
    )
    assert await delivery.requeue_orphans(db, quiet_s=60) == 0  # its new job is in the queue


async def test_finished_deliveries_are_pruned_after_the_retention(db: Database, org: Org, database_url: str) -> None:
    hook = await _hook(org, ["*"])
    old = (await org.client.post(f"/v1/webhooks/{hook['id']}/test")).json()
    old_pending = (await org.client.post(f"/v1/webhooks/{hook['id']}/test")).json()
    recent = (await org.client.post(f"/v1/webhooks/{hook['id']}/test")).json()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE webhook_delivery SET created_at = now() - interval '31 days', "
            "status = CASE WHEN id = %s THEN 'failed' ELSE status END WHERE id = ANY(%s)",
            (old["id"], [old["id"], old_pending["id"]]),
        )
        conn.execute("UPDATE webhook_delivery SET status = 'succeeded' WHERE id = %s", (recent["id"],))
    assert await delivery.prune(db, retention_days=30) >= 1
    left = {d["id"] for d in (await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["data"]}
    assert left == {old_pending["id"], recent["id"]}


# --- erasure ---------------------------------------------------------------------------------------------

SECRET = "s3cret-diagnosis-7f3a"


async def test_a_pending_delivery_of_an_erased_memory_sends_only_ids(
    db: Database, org: Org, settings: Settings, database_url: str
) -> None:
    listener = Listener()  # no worker runs here: the delivery stays pending until sent by hand below
    try:
        r = await org.client.post("/v1/webhooks", json={"url": listener.url("/pending"), "event_types": ["*"]})
        hook = r.json()
        memory = (await org.client.post("/v1/memories", json={"content": f"Has {SECRET}"})).json()
        ((pending,),) = [(await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["data"]]
        assert pending["status"] == "pending" and SECRET in str(pending["payload"])
        await org.client.delete(f"/v1/memories/{memory['id']}", params={"hard": "true"})
        row = await _delivery_row(database_url, pending["id"])
        assert row["status"] == "pending" and SECRET not in str(row["payload"])  # still owed, but cut down
        done = await delivery.deliver(db, settings, org.id, uuid.UUID(pending["id"]), queue_job_id=row["queue_job_id"])
        assert done is not None and done["status"] == "succeeded"
        (sent,) = listener.received("/pending")
        assert SECRET.encode() not in sent.body and sent.headers["webhook-id"] == pending["event_id"]
        payload = verify(hook["secret"], sent.headers, sent.body)
        assert payload["type"] == "memory.created" and payload["data"]["redacted"] is True
        assert payload["data"]["memory"]["id"] == memory["id"] and "content" not in payload["data"]["memory"]
    finally:
        listener.close()


async def test_deleting_a_user_redacts_their_jobs_events(db: Database, org: Org) -> None:
    hook = await _hook(org, ["job.succeeded"])
    user = (await org.client.post("/v1/users", json={"external_id": "leaver"})).json()
    other = (await org.client.post("/v1/users", json={"external_id": "keeper"})).json()
    session = (await org.client.post("/v1/sessions", json={"user_id": user["id"]})).json()
    result = {"memories_add": 1, "rejected_examples": [f"memory {SECRET!r}: too long"]}
    async with db.tenant(org.id) as conn:
        by_user = await jobs.enqueue(conn, org.id, queue.NARRATE, max_attempts=1, user_id=uuid.UUID(user["id"]))
        by_session = await jobs.enqueue(
            conn, org.id, queue.EXTRACT, max_attempts=1, session_id=uuid.UUID(session["id"])
        )
        theirs = await jobs.enqueue(conn, org.id, queue.NARRATE, max_attempts=1, user_id=uuid.UUID(other["id"]))
    async with db.tenant(org.id) as conn:
        for job_id in (by_user, by_session, theirs):
            await jobs.succeed(conn, org.id, job_id, result, provider="offline", usage=Usage())
    assert (await org.client.delete(f"/v1/users/{user['id']}")).status_code == 204
    sent = [d for _, d in await _events(org, hook)]
    audit = (await org.client.get("/v1/audit", params={"action": "user.deleted"})).json()["data"]
    pseudonym = audit[0]["entity_id"]  # every erased id in the log became this one
    erased = {user["id"], session["id"], str(by_user), str(by_session)}
    mine = [d for d in sent if d.get("redacted")]
    assert len(mine) == 2
    for data in mine:
        assert "result" not in data["job"] and SECRET not in str(data)
        assert set(data["job"]) == {"id", "kind", "status", "session_id", "user_id"}
        assert data["job"]["id"] == pseudonym and not erased & set(map(str, data["job"].values()))
    (kept,) = [d for d in sent if d["job"]["id"] == str(theirs)]
    assert kept["job"]["result"] == result  # another user's job is not theirs to erase


async def test_redaction_is_idempotent_and_limited_to_the_org(db: Database, make_org: OrgFactory) -> None:
    a, b = await make_org(), await make_org()
    hooks = [await _hook(a, ["*"]), await _hook(b, ["*"])]
    memory_id = uuid.uuid4()  # the same id in both orgs' logs (as if guessed): B's is not A's to redact
    for org in (a, b):
        async with db.tenant(org.id) as conn:
            await events.emit(
                conn,
                org_id=org.id,
                event_type="memory.created",
                data={"object": "memory", "action": "created", "memory": {"id": memory_id, "content": SECRET}},
            )
    async with db.tenant(a.id) as conn:
        assert await events.redact(conn, a.id, "memory", [memory_id]) == 1
        assert await events.redact(conn, a.id, "memory", [memory_id]) == 0
        assert await events.redact(conn, a.id, "memory", []) == 0
    (only_a,) = await _events(a, hooks[0])
    assert only_a[1]["redacted"] is True and SECRET not in str(only_a)
    (only_b,) = await _events(b, hooks[1])
    assert only_b[1]["memory"]["content"] == SECRET


async def test_a_repositorys_document_deliveries_can_be_redacted_by_repository(db: Database, org: Org) -> None:
    hook = await _hook(org, ["document.synced"])
    repo = (await org.client.post("/v1/repositories", json={"name": "private"})).json()
    files = {"files": [{"path": f"{SECRET}.md", "content": f"# {SECRET}\n\nalpha"}]}
    assert (await org.client.post(f"/v1/repositories/{repo['id']}/files", json=files)).status_code == 200
    loose = (await org.client.post("/v1/documents", json={"content": "# Loose\n\nbeta", "title": "Loose"})).json()
    async with db.tenant(org.id) as conn:
        with pytest.raises(ValueError, match="keeps no"):
            await events.redact(conn, org.id, "document", [uuid.UUID(repo["id"])], key="path")
        assert await events.redact(conn, org.id, "document", [uuid.UUID(repo["id"])], key="repository_id") == 1
    in_repo, other = (d for _, d in await _events(org, hook))
    assert in_repo["redacted"] is True and SECRET not in str(in_repo)
    assert in_repo["document"]["repository_id"] == repo["id"] and set(in_repo) == {"action", "redacted", "document"}
    assert other["document"]["id"] == loose["document"]["id"] and other["document"]["title"] == "Loose"


async def test_with_private_destinations_blocked_nothing_is_sent_to_them(
    db: Database, org: Org, settings: Settings, database_url: str
) -> None:
    listener = Listener()
    try:
        r = await org.client.post("/v1/webhooks", json={"url": listener.url("/inside"), "event_types": ["*"]})
        hook = r.json()
        await org.client.post("/v1/memories", json={"content": "anything"})
        ((pending,),) = [(await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["data"]]
        row = await _delivery_row(database_url, pending["id"])
        strict = settings.model_copy(update={"webhook_allow_networks": ()})
        done = await delivery.deliver(db, strict, org.id, uuid.UUID(pending["id"]), queue_job_id=row["queue_job_id"])
        assert done is not None and done["status"] == "failed"  # at once: asking again will not help
        logged = (await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries/{pending['id']}")).json()
        assert "127.0.0.1 is at 127.0.0.1, a loopback, private or reserved address" in logged["last_error"]
        assert listener.received("/inside") == []
    finally:
        listener.close()


async def test_a_destination_is_resolved_and_every_address_checked() -> None:
    policy = destinations.Policy()
    assert await destinations.resolve(policy, "93.184.216.34", 8443) == ["93.184.216.34"]
    for private in ("localhost", "localhost.", "10.0.0.1", "169.254.169.254", "::1", "127.1", "0x7f.1", "2130706433"):
        with pytest.raises(destinations.DestinationRefused):
            await destinations.resolve(policy, private, 80)
    with pytest.raises(destinations.DestinationRefused, match="loopback, as 127.0.0.1"):
        await destinations.resolve(policy, "[::ffff:127.0.0.1]", 80)


async def test_the_log_keeps_status_and_timing_not_the_response_unless_asked(
    db: Database, org: Org, settings: Settings, database_url: str
) -> None:
    listener = Listener()
    try:
        hook = (await org.client.post("/v1/webhooks", json={"url": listener.url("/quiet")})).json()
        sent = []
        for update in ({}, {"webhook_response_chars": 5}):
            queued = (await org.client.post(f"/v1/webhooks/{hook['id']}/test")).json()
            job = (await _delivery_row(database_url, queued["id"]))["queue_job_id"]
            chosen = settings.model_copy(update=update)
            done = await delivery.deliver(db, chosen, org.id, uuid.UUID(queued["id"]), queue_job_id=job)
            assert done is not None and done["status"] == "succeeded"
            sent.append((await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries/{queued['id']}")).json())
        (plain,), (excerpt,) = (d["attempt_log"] for d in sent)
        assert plain["status_code"] == 200 and plain["duration_ms"] >= 0 and plain["response"] is None
        assert excerpt["response"] == "answe"  # "answered 200", cut to ENGRAM_WEBHOOK_RESPONSE_CHARS
    finally:
        listener.close()

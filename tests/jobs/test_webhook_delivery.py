"""Webhooks delivered by the in-process worker to a real HTTP listener on 127.0.0.1: signed, retried with
backoff, failed after the last attempt, replayed; every attempt visible in the delivery log."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engramdb.config import Settings
from engramdb.webhooks import InvalidSignature, generate_secret, verify
from tests.conftest import Org
from tests.webhook_listener import Listener

pytestmark = pytest.mark.usefixtures("worker")

MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    # Backoff of 0.05, 0.1 s: the retries run within the test, the schedule is still exercised. The
    # listener is on 127.0.0.1, which webhooks may reach only when allowed; responses are logged on request.
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        webhook_retry_base_s=0.05,
        webhook_max_attempts=MAX_ATTEMPTS,
        webhook_timeout_s=5,
        webhook_allow_networks=["127.0.0.1/32"],
        webhook_response_chars=500,
    )


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


async def _webhook(org: Org, url: str, event_types: list[str]) -> dict[str, Any]:
    r = await org.client.post("/v1/webhooks", json={"url": url, "event_types": event_types})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _finished(org: Org, webhook_id: str, delivery_id: str, *, timeout_s: float = 30.0) -> dict[str, Any]:
    """The delivery once it is no longer pending (polled, up to a deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = await org.client.get(f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}")
        assert r.status_code == 200, r.text
        delivery: dict[str, Any] = r.json()
        if delivery["status"] != "pending":
            return delivery
        assert time.monotonic() < deadline, f"delivery still pending: {delivery}"
        await asyncio.sleep(0.02)


async def _only_delivery(org: Org, webhook_id: str) -> dict[str, Any]:
    (delivery,) = (await org.client.get(f"/v1/webhooks/{webhook_id}/deliveries")).json()["data"]
    return dict(delivery)


async def test_a_created_memory_reaches_a_local_listener_signed(org: Org, listener: Listener) -> None:
    hook = await _webhook(org, listener.url("/signed"), ["memory.created"])
    r = await org.client.post("/v1/memories", json={"content": "Prefers tea to coffee", "tags": ["drinks"]})
    assert r.status_code == 201, r.text
    memory = r.json()

    (request,) = await listener.wait_for("/signed", 1)
    payload = verify(hook["secret"], request.headers, request.body)
    assert payload["type"] == "memory.created"
    assert payload["timestamp"].endswith("Z")
    assert payload["data"]["object"] == "memory" and payload["data"]["action"] == "created"
    assert payload["data"]["memory"]["id"] == memory["id"]
    assert payload["data"]["memory"]["content"] == "Prefers tea to coffee"
    assert payload["data"]["memory"]["tags"] == ["drinks"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("Engram-Webhooks/")
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    # A receiver must refuse the same request with another body, or under another secret.
    with pytest.raises(InvalidSignature):
        verify(hook["secret"], request.headers, request.body.replace(b"tea", b"gin"))
    with pytest.raises(InvalidSignature):
        verify(generate_secret(), request.headers, request.body)

    delivery = await _finished(org, hook["id"], (await _only_delivery(org, hook["id"]))["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 1
    assert delivery["event_id"] == request.headers["webhook-id"]
    assert delivery["last_status_code"] == 200 and delivery["delivered_at"] is not None
    assert delivery["payload"] == payload
    (attempt,) = delivery["attempt_log"]
    assert attempt["status_code"] == 200 and attempt["error"] is None and attempt["response"] == "answered 200"


async def test_deliveries_share_the_workers_client(
    org: Org, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No TLS context (a CA bundle parsed: 36 ms of CPU) is made per delivery: the worker's client is reused."""
    made: list[object] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    hook = await _webhook(org, listener.url("/pooled"), ["*"])
    queued = [(await org.client.post(f"/v1/webhooks/{hook['id']}/test")).json() for _ in range(10)]
    await listener.wait_for("/pooled", 10)
    for delivery in queued:
        assert (await _finished(org, hook["id"], delivery["id"]))["status"] == "succeeded"
    assert made == []


async def test_a_5xx_is_retried_with_backoff_then_succeeds(org: Org, listener: Listener) -> None:
    listener.script("/flaky", 500)
    hook = await _webhook(org, listener.url("/flaky"), ["*"])
    r = await org.client.post(f"/v1/webhooks/{hook['id']}/test")
    assert r.status_code == 202, r.text
    queued = r.json()
    assert queued["status"] == "pending" and queued["event_type"] == "webhook.test"

    first, second = await listener.wait_for("/flaky", 2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == queued["event_id"]
    assert first.body == second.body  # the same event; each attempt signed afresh
    assert verify(hook["secret"], second.headers, second.body)["type"] == "webhook.test"

    delivery = await _finished(org, hook["id"], queued["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 2
    failed, ok = delivery["attempt_log"]
    assert failed["status_code"] == 500 and failed["error"] == "HTTP 500"
    assert ok["status_code"] == 200 and ok["error"] is None


async def test_failure_after_the_last_attempt_then_replay_succeeds(org: Org, listener: Listener) -> None:
    listener.script("/down", *[503] * MAX_ATTEMPTS)
    hook = await _webhook(org, listener.url("/down"), ["memory.created"])
    await org.client.post("/v1/memories", json={"content": "Lives in Porto"})
    delivery = await _finished(org, hook["id"], (await _only_delivery(org, hook["id"]))["id"])
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == MAX_ATTEMPTS and delivery["last_status_code"] == 503
    assert delivery["next_attempt_at"] is None and delivery["delivered_at"] is None
    assert [a["status_code"] for a in delivery["attempt_log"]] == [503] * MAX_ATTEMPTS
    assert len(listener.received("/down")) == MAX_ATTEMPTS
    failed = (await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"status": "failed"})).json()
    assert [d["id"] for d in failed["data"]] == [delivery["id"]]

    r = await org.client.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/replay")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending" and r.json()["replays"] == 1
    requests = await listener.wait_for("/down", MAX_ATTEMPTS + 1)
    assert requests[-1].headers["webhook-id"] == delivery["event_id"]  # the same event id
    assert verify(hook["secret"], requests[-1].headers, requests[-1].body)["data"]["memory"]["content"] == (
        "Lives in Porto"
    )
    replayed = await _finished(org, hook["id"], delivery["id"])
    assert replayed["status"] == "succeeded" and replayed["attempts"] == MAX_ATTEMPTS + 1
    assert replayed["replays"] == 1 and replayed["last_status_code"] == 200


async def test_a_replay_is_one_attempt(org: Org, listener: Listener) -> None:
    listener.script("/gone", 410, 500)
    hook = await _webhook(org, listener.url("/gone"), ["*"])
    queued = (await org.client.post(f"/v1/webhooks/{hook['id']}/test")).json()
    delivery = await _finished(org, hook["id"], queued["id"])
    # A 4xx other than 408/429 is the receiver's answer: not retried.
    assert delivery["status"] == "failed" and delivery["attempts"] == 1 and delivery["last_error"] == "HTTP 410"
    await org.client.post(f"/v1/webhooks/{hook['id']}/deliveries/{queued['id']}/replay")
    await listener.wait_for("/gone", 2)
    again = await _finished(org, hook["id"], queued["id"])
    assert again["status"] == "failed" and again["attempts"] == 2 and again["last_status_code"] == 500


async def test_an_unreachable_endpoint_fails_after_the_last_attempt(org: Org) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    hook = await _webhook(org, f"http://127.0.0.1:{port}/nobody", ["*"])
    queued = (await org.client.post(f"/v1/webhooks/{hook['id']}/test")).json()
    delivery = await _finished(org, hook["id"], queued["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == MAX_ATTEMPTS
    assert delivery["last_status_code"] is None and "ConnectError" in delivery["last_error"]
    assert all(a["status_code"] is None for a in delivery["attempt_log"])


async def test_a_rotated_secret_still_signs_during_its_grace_period(org: Org, listener: Listener) -> None:
    hook = await _webhook(org, listener.url("/rotated"), ["*"])
    rotated = (await org.client.post(f"/v1/webhooks/{hook['id']}/rotate-secret")).json()
    assert rotated["secret"] != hook["secret"] and rotated["previous_secret_expires_at"] is not None
    await org.client.post(f"/v1/webhooks/{hook['id']}/test")
    (request,) = await listener.wait_for("/rotated", 1)
    assert len(request.headers["webhook-signature"].split()) == 2
    for secret in (rotated["secret"], hook["secret"]):
        assert verify(secret, request.headers, request.body)["type"] == "webhook.test"


async def test_extraction_raises_memory_created_and_job_succeeded(org: Org, listener: Listener) -> None:
    hook = await _webhook(org, listener.url("/extraction"), ["memory.created", "job.succeeded"])
    session = (await org.client.post("/v1/sessions", json={"external_user_id": "caroline"})).json()
    r = await org.client.post(
        f"/v1/sessions/{session['id']}/messages",
        params={"wait": "true"},
        json={"messages": [{"role": "user", "name": "Caroline", "content": "I moved to Lisbon last month."}]},
    )
    job = r.json()["job"]
    assert job["status"] == "succeeded", job
    memories = (await org.client.get("/v1/memories", params={"session_id": session["id"]})).json()["data"]
    assert memories
    requests = await listener.wait_for("/extraction", len(memories) + 1)
    events = [verify(hook["secret"], q.headers, q.body) for q in requests]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event["data"])
    assert {m["memory"]["id"] for m in by_type["memory.created"]} == {m["id"] for m in memories}
    assert all(m["memory"]["source"] == "extraction" for m in by_type["memory.created"])
    (done,) = by_type["job.succeeded"]
    assert done["job"]["id"] == job["id"] and done["job"]["status"] == "succeeded"


SECRET = "s3cret-diagnosis-7f3a"


async def _replayed(org: Org, listener: Listener, hook: dict[str, Any], delivery: dict[str, Any], path: str) -> Any:
    """Replay a finished delivery; the payload the listener then receives (signature checked)."""
    before = len(listener.received(path))
    r = await org.client.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/replay")
    assert r.status_code == 202, r.text
    assert SECRET not in r.text
    sent = (await listener.wait_for(path, before + 1))[-1]
    assert sent.headers["webhook-id"] == delivery["event_id"] and SECRET.encode() not in sent.body
    await _finished(org, hook["id"], delivery["id"])
    return verify(hook["secret"], sent.headers, sent.body)


async def test_a_replay_after_a_purge_sends_only_ids(org: Org, listener: Listener) -> None:
    listener.script("/purged", *[503] * MAX_ATTEMPTS)
    hook = await _webhook(org, listener.url("/purged"), ["memory.created"])
    memory = (await org.client.post("/v1/memories", json={"content": f"Has {SECRET}"})).json()
    delivery = await _finished(org, hook["id"], (await _only_delivery(org, hook["id"]))["id"])
    assert delivery["status"] == "failed" and SECRET in str(delivery["payload"])

    assert (await org.client.delete(f"/v1/memories/{memory['id']}", params={"hard": "true"})).status_code == 204
    log = await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries")
    assert SECRET not in log.text
    (after,) = log.json()["data"]
    assert after["attempts"] == MAX_ATTEMPTS and len(after["attempt_log"]) == MAX_ATTEMPTS  # the record stays
    payload = await _replayed(org, listener, hook, delivery, "/purged")
    assert payload["type"] == "memory.created" and payload["data"]["redacted"] is True
    assert payload["data"]["memory"]["id"] == memory["id"] and "content" not in payload["data"]["memory"]
    assert SECRET not in (await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries")).text


async def test_deleting_a_user_sends_user_deleted_and_replays_send_only_ids(org: Org, listener: Listener) -> None:
    hook = await _webhook(org, listener.url("/user"), ["memory.created", "user.deleted"])
    memory = (await org.client.post("/v1/memories", json={"external_user_id": "leaver", "content": SECRET})).json()
    (first,) = await listener.wait_for("/user", 1)
    created = await _finished(org, hook["id"], (await _only_delivery(org, hook["id"]))["id"])
    assert created["status"] == "succeeded" and SECRET.encode() in first.body  # sent before the erasure

    assert (await org.client.delete(f"/v1/users/{memory['user_id']}")).status_code == 204
    _, second = await listener.wait_for("/user", 2)
    event = verify(hook["secret"], second.headers, second.body)
    assert event["type"] == "user.deleted"
    assert event["data"] == {"object": "user", "action": "deleted", "user": {"id": memory["user_id"]}, "memories": 1}
    assert SECRET not in (await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries")).text
    # Once sent, the user.deleted delivery forgets whom it named; the rest name the erasure's pseudonym.
    deleted = await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"event_type": "user.deleted"})
    (told,) = deleted.json()["data"]
    told = await _finished(org, hook["id"], told["id"])
    assert told["payload"]["data"] == {"object": "user", "action": "deleted", "redacted": True, "memories": 1}
    assert memory["user_id"] not in (await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries")).text
    pseudonym = (await org.client.get("/v1/audit", params={"action": "user.deleted"})).json()["data"][0]["entity_id"]
    payload = await _replayed(org, listener, hook, created, "/user")
    assert payload["data"]["redacted"] is True and payload["data"]["memory"]["user_id"] == pseudonym

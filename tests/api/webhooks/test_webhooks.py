"""The webhook routes: endpoints (admin), their secret shown once, input rules, the delivery log, replay,
and fail-closed tenancy. Delivery itself is tested through the worker in tests/jobs/test_webhook_delivery.py."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engramdb import limits
from engramdb.config import Settings
from tests.conftest import Org, OrgFactory, assert_problem, client_for

URL = "http://127.0.0.1:9/hooks"


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    """``URL`` is on 127.0.0.1: webhooks may point there only when allowed (nothing is sent in this module)."""
    return Settings(
        database_url=database_url, auto_migrate=False, key_touch_interval_s=0, webhook_allow_networks=["127.0.0.1/32"]
    )


async def _create(org: Org, **body: Any) -> dict[str, Any]:
    r = await org.client.post("/v1/webhooks", json={"url": URL, **body})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def test_the_secret_is_shown_on_creation_only(org: Org) -> None:
    created = await _create(org, description="CRM sync")
    assert created["event_types"] == ["*"] and created["enabled"] is True and created["url"] == URL
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    got = await org.client.get(f"/v1/webhooks/{created['id']}")
    listed = await org.client.get("/v1/webhooks")
    audit = await org.client.get("/v1/audit", params={"entity_id": created["id"]})
    for r in (got, listed, audit):
        assert r.status_code == 200 and secret not in r.text and '"secret"' not in r.text
    assert got.json() == {k: v for k, v in created.items() if k != "secret"}
    assert [w["id"] for w in listed.json()["data"]] == [created["id"]]
    assert [e["action"] for e in audit.json()["data"]] == ["webhook.created"]


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/hook"},
        {"url": "example.com/hook"},
        {"url": "http://"},
        {"url": "http://exa mple.com/"},
        {"url": "http://example.com/\x00"},
        {"url": "http://example.com:99999/"},
        {"url": "http://[::1/"},
        {"url": "http://example.com/hook#frag"},
        {"url": "https://bücher.example/"},
        {"url": "https://example.com/" + "a" * limits.MAX_WEBHOOK_URL_CHARS},
        {"url": URL, "event_types": []},
        {"url": URL, "event_types": ["memory.exploded"]},
        {"url": URL, "event_types": ["webhook.test"]},
        {"url": URL, "description": "x" * (limits.MAX_DESCRIPTION_CHARS + 1)},
        {"url": URL, "secret": "whsec_mine"},
        {"event_types": ["*"]},
    ],
)
async def test_invalid_endpoints_are_refused(org: Org, body: dict[str, Any]) -> None:
    r = await org.client.post("/v1/webhooks", json=body)
    assert_problem(r, 422)
    assert (await org.client.get("/v1/webhooks")).json()["data"] == []


async def test_an_organization_has_at_most_max_webhooks(org: Org) -> None:
    made = [await _create(org, event_types=["job.failed", "job.failed"]) for _ in range(limits.MAX_WEBHOOKS)]
    assert made[0]["event_types"] == ["job.failed"]  # duplicates dropped
    assert_problem(await org.client.post("/v1/webhooks", json={"url": URL}), 400)
    assert (await org.client.delete(f"/v1/webhooks/{made[0]['id']}")).status_code == 204
    await _create(org)
    page = await org.client.get("/v1/webhooks", params={"limit": 15})
    rest = await org.client.get("/v1/webhooks", params={"limit": 15, "cursor": page.json()["next_cursor"]})
    ids = [w["id"] for w in page.json()["data"] + rest.json()["data"]]
    assert len(ids) == len(set(ids)) == limits.MAX_WEBHOOKS and rest.json()["next_cursor"] is None


async def test_update_changes_only_what_is_sent(org: Org) -> None:
    created = await _create(org, description="first", event_types=["memory.created"])
    hook = f"/v1/webhooks/{created['id']}"
    r = await org.client.patch(hook, json={"event_types": ["memory.updated", "*"], "enabled": False, "url": None})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["event_types"] == ["memory.updated", "*"] and updated["enabled"] is False
    assert updated["url"] == URL and updated["description"] == "first"
    assert updated["updated_at"] > created["updated_at"]
    cleared = (await org.client.patch(hook, json={"description": None, "url": "https://example.com/h"})).json()
    assert cleared["description"] is None and cleared["url"] == "https://example.com/h"
    assert_problem(await org.client.patch(hook, json={"url": "mailto:ops@example.com"}), 422)
    assert_problem(await org.client.patch(hook, json={"event_types": []}), 422)
    assert_problem(await org.client.patch(hook, json={"secret": "whsec_x"}), 422)


async def test_rotating_the_secret(org: Org) -> None:
    created = await _create(org)
    r = await org.client.post(f"/v1/webhooks/{created['id']}/rotate-secret")
    assert r.status_code == 200, r.text
    rotated = r.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    grace = datetime.fromisoformat(rotated["previous_secret_expires_at"]) - datetime.now(UTC)
    assert timedelta(hours=23) < grace <= timedelta(hours=24)
    assert rotated["secret"] not in (await org.client.get(f"/v1/webhooks/{created['id']}")).text


async def test_test_event_and_the_delivery_log(org: Org) -> None:
    c = org.client
    created = await _create(org, event_types=["memory.created"])
    hook = f"/v1/webhooks/{created['id']}"
    r = await c.post(f"{hook}/test")
    assert r.status_code == 202, r.text
    test = r.json()
    assert test["event_type"] == "webhook.test" and test["status"] == "pending" and test["attempts"] == 0
    assert test["payload"]["data"]["webhook_id"] == created["id"] and test["next_attempt_at"] is not None
    memory = (await c.post("/v1/memories", json={"content": "Plays chess"})).json()
    await c.post("/v1/sessions", json={})  # no event for it: not subscribed

    log = (await c.get(f"{hook}/deliveries")).json()["data"]
    assert [d["event_type"] for d in log] == ["memory.created", "webhook.test"]  # newest first
    assert log[0]["payload"]["data"]["memory"]["id"] == memory["id"]
    page = (await c.get(f"{hook}/deliveries", params={"limit": 1})).json()
    assert len(page["data"]) == 1 and page["next_cursor"]
    only = (await c.get(f"{hook}/deliveries", params={"event_type": "webhook.test"})).json()["data"]
    assert [d["id"] for d in only] == [test["id"]]
    assert (await c.get(f"{hook}/deliveries", params={"status": "failed"})).json()["data"] == []
    assert_problem(await c.get(f"{hook}/deliveries", params={"status": "lost"}), 422)
    got = await c.get(f"{hook}/deliveries/{test['id']}")
    assert got.status_code == 200 and got.json() == test

    # Pending: its attempt is already queued.
    assert_problem(await c.post(f"{hook}/deliveries/{test['id']}/replay"), 409)
    await c.patch(hook, json={"enabled": False})
    assert_problem(await c.post(f"{hook}/test"), 409)
    # A delivery is found under its own endpoint only.
    other = await _create(org)
    assert_problem(await c.get(f"/v1/webhooks/{other['id']}/deliveries/{test['id']}"), 404)
    assert_problem(await c.post(f"/v1/webhooks/{other['id']}/deliveries/{test['id']}/replay"), 404)


async def test_deleting_an_endpoint_deletes_its_log(org: Org) -> None:
    created = await _create(org)
    hook = f"/v1/webhooks/{created['id']}"
    test = (await org.client.post(f"{hook}/test")).json()
    assert (await org.client.delete(hook)).status_code == 204
    for r in (
        await org.client.get(hook),
        await org.client.get(f"{hook}/deliveries"),
        await org.client.get(f"{hook}/deliveries/{test['id']}"),
        await org.client.delete(hook),
    ):
        assert_problem(r, 404)
    actions = [
        e["action"] for e in (await org.client.get("/v1/audit", params={"entity_id": created["id"]})).json()["data"]
    ]
    assert actions == ["webhook.deleted", "webhook.tested", "webhook.created"]


async def test_only_admin_keys_manage_webhooks(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    created = await _create(org)
    test = (await org.client.post(f"/v1/webhooks/{created['id']}/test")).json()
    key = (await org.client.post("/v1/keys", json={"name": "writer", "scopes": ["write"]})).json()["api_key"]
    hook = f"/v1/webhooks/{created['id']}"
    async with client_for(app, key) as writer:
        for method, url, body in (
            ("POST", "/v1/webhooks", {"url": URL}),
            ("GET", "/v1/webhooks", None),
            ("GET", hook, None),
            ("PATCH", hook, {"enabled": False}),
            ("DELETE", hook, None),
            ("POST", f"{hook}/rotate-secret", None),
            ("POST", f"{hook}/test", None),
            ("GET", f"{hook}/deliveries", None),
            ("GET", f"{hook}/deliveries/{test['id']}", None),
            ("POST", f"{hook}/deliveries/{test['id']}/replay", None),
        ):
            assert_problem(await writer.request(method, url, json=body), 403)
    assert (await org.client.get(hook)).json()["enabled"] is True


async def test_another_orgs_webhooks_and_deliveries_are_not_found(make_org: OrgFactory) -> None:
    a, b = await make_org(), await make_org()
    hook = await _create(a)
    test = (await a.client.post(f"/v1/webhooks/{hook['id']}/test")).json()
    mine = await _create(b)
    base = f"/v1/webhooks/{hook['id']}"
    for method, url, body in (
        ("GET", base, None),
        ("PATCH", base, {"url": "http://127.0.0.1:9/stolen"}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("POST", f"{base}/test", None),
        ("GET", f"{base}/deliveries", None),
        ("GET", f"{base}/deliveries/{test['id']}", None),
        ("POST", f"{base}/deliveries/{test['id']}/replay", None),
        ("GET", f"/v1/webhooks/{mine['id']}/deliveries/{test['id']}", None),
        ("GET", f"/v1/webhooks/{uuid.uuid4()}", None),
    ):
        assert_problem(await b.client.request(method, url, json=body), 404)
    assert [w["id"] for w in (await b.client.get("/v1/webhooks")).json()["data"]] == [mine["id"]]
    # Org B's events never reach org A's endpoint.
    await b.client.post("/v1/memories", json={"content": "b's"})
    log = (await a.client.get(f"{base}/deliveries")).json()["data"]
    assert [d["id"] for d in log] == [test["id"]]
    assert (await a.client.get(base)).json()["url"] == URL
    assert_problem(await a.client.get("/v1/webhooks/not-a-uuid"), 422)


# --- erasure: the delivery log keeps no erased content -------------------------------------------------

SECRET = "s3cret-diagnosis-7f3a"
MEMORY_IDS = {"id", "user_id", "agent_id", "team_id", "app_id", "session_id"}


async def _log(org: Org, hook: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The endpoint's whole delivery log, as raw text and parsed (oldest first)."""
    r = await org.client.get(f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 200})
    assert r.status_code == 200, r.text
    return r.text, list(reversed(r.json()["data"]))


async def test_purging_a_memory_redacts_its_earlier_deliveries(org: Org) -> None:
    c = org.client
    everything = await _create(org)
    created_only = await _create(org, event_types=["memory.created"])
    body = {"content": f"Diagnosed with {SECRET}", "tags": [SECRET], "metadata": {"note": SECRET}}
    memory = (await c.post("/v1/memories", json={**body, "external_user_id": "patient"})).json()
    kept = (await c.post("/v1/memories", json={"content": "Likes long walks"})).json()
    await c.patch(f"/v1/memories/{memory['id']}", json={"content": f"Treated for {SECRET}"})
    await c.post(f"/v1/memories/{memory['id']}/state", json={"state": "archived", "reason": SECRET})
    await c.delete(f"/v1/memories/{memory['id']}")  # soft: restorable, so its content stays in the log
    text, log = await _log(org, everything)
    assert SECRET in text and len(log) == 5

    assert (await c.delete(f"/v1/memories/{memory['id']}", params={"hard": "true"})).status_code == 204
    text, after = await _log(org, everything)
    assert SECRET not in text
    # The rows stay (with their ids, event ids and attempts); only their data is cut down.
    assert [d["id"] for d in after[:5]] == [d["id"] for d in log]
    assert [(d["event_type"], d["event_id"], d["payload"]["timestamp"]) for d in after[:5]] == [
        (d["event_type"], d["event_id"], d["payload"]["timestamp"]) for d in log
    ]
    about = [d for d in after if d["payload"]["data"].get("memory", {}).get("id") == memory["id"]]
    assert [(d["event_type"], d["payload"]["data"]["action"]) for d in about] == [
        ("memory.created", "created"),
        ("memory.updated", "updated"),
        ("memory.updated", "state_changed"),
        ("memory.invalidated", "deleted"),
        ("memory.invalidated", "purged"),
    ]
    for delivery in about[:4]:
        data = delivery["payload"]["data"]
        assert set(data) == {"object", "action", "redacted", "memory"} and data["redacted"] is True
        assert data["memory"] == {k: memory[k] for k in MEMORY_IDS}
    assert "redacted" not in about[4]["payload"]["data"]  # the erasure event itself: ids only already
    assert set(about[4]["payload"]["data"]["memory"]) == MEMORY_IDS
    other = [d for d in after if d["payload"]["data"]["memory"]["id"] == kept["id"]]
    assert other[0]["payload"]["data"]["memory"]["content"] == "Likes long walks"  # other memories untouched

    text, (first, second) = await _log(org, created_only)
    assert SECRET not in text and first["payload"]["data"]["redacted"] is True
    assert "redacted" not in second["payload"]["data"]
    one = await c.get(f"/v1/webhooks/{everything['id']}/deliveries/{about[0]['id']}")
    assert one.status_code == 200 and SECRET not in one.text


async def test_deleting_a_user_redacts_deliveries_about_them_and_raises_user_deleted(org: Org) -> None:
    c = org.client
    everything = await _create(org)
    invalidations = await _create(org, event_types=["memory.invalidated"])
    created_only = await _create(org, event_types=["memory.created"])
    explicit = await _create(org, event_types=["user.deleted"])
    memory = (await c.post("/v1/memories", json={"external_user_id": "leaver", "content": f"Has {SECRET}"})).json()
    user_id = memory["user_id"]
    purged = (await c.post("/v1/memories", json={"user_id": user_id, "content": "gone already"})).json()
    await c.delete(f"/v1/memories/{purged['id']}", params={"hard": "true"})
    await c.delete(f"/v1/memories/{memory['id']}")  # soft-deleted memories are erased with the user too
    fact = {"subject": "Leaver", "predicate": "suffers_from", "single_valued": True, "user_id": user_id}
    assert (await c.post("/v1/facts", json={**fact, "object": SECRET})).status_code == 201
    assert (await c.post("/v1/facts", json={**fact, "object": "nothing"})).status_code == 201  # closes the first
    doc = {"content": f"# {SECRET}\n\nnotes", "title": SECRET, "path": f"{SECRET}.md", "user_id": user_id}
    assert (await c.post("/v1/documents", json=doc)).status_code == 201
    keeper = (await c.post("/v1/memories", json={"external_user_id": "keeper", "content": "Keeps bees"})).json()
    text, before = await _log(org, everything)
    assert SECRET in text and "memory.invalidated" in (await _log(org, invalidations))[0]

    assert (await c.delete(f"/v1/users/{user_id}")).status_code == 204
    for hook in (everything, invalidations, created_only, explicit):
        assert SECRET not in (await _log(org, hook))[0]
    text, after = await _log(org, everything)
    assert [d["id"] for d in after[: len(before)]] == [d["id"] for d in before]
    # The ids the redacted deliveries keep are the erasure's pseudonym (the one its audit row names);
    # only the pending user.deleted names the user.
    audit = (await c.get("/v1/audit", params={"action": "user.deleted"})).json()["data"]
    pseudonym = audit[0]["entity_id"]
    assert user_id not in str(after[: len(before)]) and user_id not in str(audit)
    for delivery in after[: len(before)]:
        data = delivery["payload"]["data"]
        owner = data.get("memory") or data.get("fact") or data.get("document") or {}
        if owner.get("user_id") == pseudonym and data.get("action") != "purged":
            assert data["redacted"] is True, delivery
    (fact_event,) = [
        d["payload"]["data"]
        for d in after
        if d["event_type"] == "memory.invalidated" and "fact" in d["payload"]["data"]
    ]
    assert fact_event["redacted"] is True and fact_event["fact"]["user_id"] == pseudonym
    assert "object" not in fact_event["fact"] and "statement" not in fact_event["fact"]
    (doc_event,) = [d["payload"]["data"] for d in after if d["event_type"] == "document.synced"]
    assert doc_event == {"action": "created", "redacted": True, "document": doc_event["document"]}
    assert set(doc_event["document"]) == {"id", "repository_id", "user_id", "agent_id", "app_id"}
    kept = [
        d["payload"]["data"]["memory"]
        for d in after
        if d["payload"]["data"].get("memory", {}).get("id") == keeper["id"]
    ]
    assert kept[0]["content"] == "Keeps bees"

    # One user.deleted event, ids only, to subscribers of it, of memory.invalidated and of everything.
    expected = {"object": "user", "action": "deleted", "user": {"id": user_id}, "memories": 1}
    for hook in (everything, invalidations, explicit):
        last = (await _log(org, hook))[1][-1]
        assert last["event_type"] == "user.deleted" and last["payload"]["type"] == "user.deleted"
        assert last["payload"]["data"] == expected
    assert all(d["event_type"] == "memory.created" for d in (await _log(org, created_only))[1])
    only = (await c.get(f"/v1/webhooks/{explicit['id']}/deliveries", params={"event_type": "user.deleted"})).json()
    assert len(only["data"]) == 1


async def test_deleting_documents_redacts_their_deliveries(org: Org) -> None:
    """A document's title, path, tags and metadata leave the log when it goes: deleted on its own, by
    a repository prune, or with its repository."""
    c = org.client
    hook = await _create(org, event_types=["document.synced"])
    alone = await c.post("/v1/documents", json={"title": f"Notes on {SECRET}", "content": "x", "tags": [SECRET]})
    assert alone.status_code == 201, alone.text
    repo = (await c.post("/v1/repositories", json={"name": "r"})).json()
    files = [{"path": f"{SECRET}-{i}.md", "content": f"# Doc {i}\n\ntext"} for i in range(3)]
    assert (await c.post(f"/v1/repositories/{repo['id']}/files", json={"files": files})).status_code == 200
    text, log = await _log(org, hook)
    assert text.count(SECRET) >= 4 and len(log) == 4

    await c.delete(f"/v1/documents/{alone.json()['document']['id']}")
    kept = {"paths": [f"{SECRET}-0.md", f"{SECRET}-1.md"]}
    assert (await c.post(f"/v1/repositories/{repo['id']}/prune", json={"keep_paths": kept["paths"]})).status_code == 200
    text, _ = await _log(org, hook)
    assert text.count(SECRET) == 2  # the two documents still there
    await c.delete(f"/v1/repositories/{repo['id']}")
    text, after = await _log(org, hook)
    assert SECRET not in text and len(after) == 4
    assert all(d["payload"]["data"]["redacted"] is True for d in after)


# --- destinations: not into the server's own network, unless the operator allows it ---------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/hook",
        "http://localhost./hook",
        "http://127.0.0.2/hook",
        "http://127.2/hook",
        "http://0x7f.0.0.2/hook",
        "http://2130706434/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.2]/hook",
        "http://10.0.0.5/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[fd00:ec2::254]/latest/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://0.0.0.0:5432/",
    ],
)
async def test_internal_destinations_are_refused_by_default(org: Org, url: str) -> None:
    """127.0.0.1 alone is allowed in this module (in any form); every other internal address is refused, in any
    form, when created or changed."""
    body = assert_problem(await org.client.post("/v1/webhooks", json={"url": url}), 422)
    (error,) = body["errors"]  # type: ignore[misc]
    assert error["location"] == "body/url"
    assert "ENGRAM_WEBHOOK_ALLOW_HOSTS" in error["message"] and "ENGRAM_WEBHOOK_ALLOW_NETWORKS" in error["message"]
    assert "url" in str(body["detail"])
    created = await _create(org)
    assert_problem(await org.client.patch(f"/v1/webhooks/{created['id']}", json={"url": url}), 422)
    assert (await org.client.get(f"/v1/webhooks/{created['id']}")).json()["url"] == URL
    await org.client.delete(f"/v1/webhooks/{created['id']}")
    assert (await org.client.get("/v1/webhooks")).json()["data"] == []
    for allowed in ("http://127.1:9/hook", "http://[::ffff:127.0.0.1]:9/hook", "https://hooks.example.com/in"):
        made = await _create(org, url=allowed)
        await org.client.delete(f"/v1/webhooks/{made['id']}")

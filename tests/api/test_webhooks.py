"""The webhook routes: endpoints (admin), their secret shown once, input rules, the delivery log, replay,
and fail-closed tenancy. Delivery itself is tested through the worker in tests/jobs/test_webhook_delivery.py."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engramdb import limits
from tests.conftest import Org, OrgFactory, assert_problem, client_for

URL = "http://127.0.0.1:9/hooks"


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

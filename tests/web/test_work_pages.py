"""The agents, tasks and governance pages, and the job retry and webhook replay buttons: in Chromium where a
person clicks (each click checked by its effect), over plain HTTP for what a key may see."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engramdb.config import Settings
from engramdb.services.core import jobs
from engramdb.services.tenancy import keys
from engramdb.storage import queue
from engramdb.storage.database import Database
from tests.web.conftest import Served, Watch, sign_in
from tests.web.test_security import _token, signed_in
from tests.webhook_listener import Listener

pytestmark = pytest.mark.slow


def _api(served: Served, key: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=served.base, headers={"Authorization": f"Bearer {key or served.key}"}, timeout=60)


# --- in the browser ----------------------------------------------------------------------------------------


async def test_canceling_a_task_ends_it_and_adds_to_its_history(browser: Any, served: Served) -> None:
    watch = Watch()
    context, page = await sign_in(browser, served.base, served.key, watch)
    try:
        await page.goto("/ui/tasks?state=submitted&queue=writing")
        row = page.locator("#task-table tr", has_text="Summarize the move")
        assert "overdue" in await row.inner_text() and "worker-1" in await row.inner_text()
        await row.get_by_role("link", name="Summarize the move").click()
        await page.wait_for_url(re.compile(rf"/ui/tasks/{served.seeded.task_id}$"))
        before = await page.locator("#task-history tbody tr").count()
        await page.fill("input[name=reason]", "the move is done")
        await page.get_by_role("button", name="Cancel task").click()
        await page.wait_for_url(re.compile(r"notice=canceled"))
        assert await page.locator("#task-state").inner_text() == "canceled"
        assert await page.locator("#task-history tbody tr").count() == before + 1
        assert "the move is done" in await page.locator("#task-history tbody tr").last.inner_text()
        assert await page.get_by_role("button", name="Cancel task").count() == 0  # a canceled task stays so
        assert not watch.errors, watch.errors
    finally:
        await context.close()


async def test_grants_holds_and_policies_are_made_and_undone_from_their_pages(browser: Any, served: Served) -> None:
    watch = Watch()
    context, page = await sign_in(browser, served.base, served.key, watch)
    try:
        await page.get_by_role("link", name="Governance").click()
        await page.wait_for_url(re.compile(r"/ui/governance/grants$"))
        await page.select_option("#grant-resource", "sessions")
        await page.select_option("#grant-grantee", "agent")
        await page.fill("#grant-grantee-id", served.seeded.worker_agent_id)
        await page.get_by_role("button", name="Grant", exact=True).click()
        await page.wait_for_url(re.compile(r"notice=granted"))
        grant = page.locator("#grants tr", has_text="read sessions")
        assert "active" in await grant.inner_text()
        await grant.get_by_role("button", name=re.compile("Revoke")).click()
        await page.wait_for_url(re.compile(r"notice=grant_revoked"))
        assert await page.locator("#grants tr", has_text="read sessions").count() == 0  # in force only

        await page.get_by_role("link", name="Legal holds").click()
        await page.fill("#hold-user", served.seeded.user_id)
        await page.fill("#hold-reason", "litigation 42")
        await page.get_by_role("button", name="Place hold").click()
        await page.wait_for_url(re.compile(r"notice=hold_placed"))
        hold = page.locator("#holds tr", has_text="litigation 42")
        await hold.get_by_role("button", name=re.compile("Release")).click()
        await page.wait_for_url(re.compile(r"notice=hold_released"))
        assert await page.locator("#holds tr", has_text="litigation 42").count() == 0

        await page.get_by_role("link", name="Retention").click()
        await page.fill("#policy-name", "old episodes")
        await page.select_option("#policy-target", "memories")
        await page.fill("#policy-days", "3650")
        await page.get_by_role("button", name="Create", exact=True).click()
        await page.wait_for_url(re.compile(r"notice=policy_created"))
        await page.get_by_role("button", name="Dry run old episodes").click()
        await page.wait_for_url(re.compile(r"notice=dry_run"))
        newest = page.locator("#runs tbody tr").first
        assert "dry run" in await newest.inner_text() and "old episodes" in await newest.inner_text()
        await page.get_by_role("button", name="Delete old episodes").click()
        await page.wait_for_url(re.compile(r"notice=policy_deleted"))
        assert await page.locator("#policies tr", has_text="old episodes").count() == 0
        assert not watch.errors, watch.errors
    finally:
        await context.close()


async def _failed_job(served: Served) -> str:
    """A narrative job of the seeded user, failed for good (queued and failed in one transaction, so the
    server's worker never runs it): what a job whose provider was down looks like."""
    db = Database.connect(Settings(database_url=served.database_url, auto_migrate=False))
    try:
        org_id = (await keys.authenticate(db, served.key, touch_interval_s=0)).org_id
        user_id = uuid.UUID(served.seeded.user_id)
        async with db.tenant(org_id) as conn:
            job_id = await jobs.enqueue(
                conn, org_id, queue.NARRATE, max_attempts=1, user_id=user_id, lock=jobs.user_lock(org_id, user_id)
            )
            await jobs.end_failed(conn, org_id, job_id, {"error": {"detail": "the provider was down"}})
    finally:
        await db.dispose()
    return str(job_id)


async def _delivery(api: httpx.Client, hook_id: str, delivery_id: str, *, until: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        found: dict[str, Any] = api.get(f"/v1/webhooks/{hook_id}/deliveries/{delivery_id}").json()
        if found["status"] == until:
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def test_retry_and_replay_queue_the_work_again(browser: Any, served: Served) -> None:
    failed_id = await _failed_job(served)
    listener = Listener()
    listener.script("/hook", 503)  # the first attempt is refused (the only one: ENGRAM_WEBHOOK_MAX_ATTEMPTS=1)
    context, page = await sign_in(browser, served.base, served.key)
    try:
        await page.goto("/ui/jobs?kind=engram.narrate")
        before = await page.locator("tbody tr").count()
        row = page.locator("tbody tr", has_text="the provider was down")
        await row.get_by_role("button", name="Retry").click()
        await page.wait_for_url(re.compile(r"notice=retried"))
        await page.goto("/ui/jobs?kind=engram.narrate")
        assert await page.locator("tbody tr").count() == before + 1  # a new job; the failed one keeps its record
        with _api(served) as api:
            narrate = api.get("/v1/jobs", params={"kind": "engram.narrate"}).json()["data"]
            assert narrate[0]["id"] != failed_id and narrate[0]["user_id"] == served.seeded.user_id

            hook = api.post("/v1/webhooks", json={"url": listener.url("/hook"), "event_types": ["user.erased"]})
            assert hook.status_code == 201, hook.text
            hook_id = hook.json()["id"]
            delivery_id = api.post(f"/v1/webhooks/{hook_id}/test").json()["id"]
            await _delivery(api, hook_id, delivery_id, until="failed")
            await page.goto(f"/ui/webhooks/{hook_id}")
            assert "503" in await page.locator("tbody tr").first.inner_text()
            await page.get_by_role("button", name="Replay").click()
            await page.wait_for_url(re.compile(r"notice=replayed"))
            await listener.wait_for("/hook", 2)
            await _delivery(api, hook_id, delivery_id, until="succeeded")
        await page.reload()
        replayed = await page.locator("tbody tr").first.inner_text()
        assert "succeeded" in replayed and "1 replays" in replayed
    finally:
        await context.close()
        listener.close()


# --- over plain HTTP: what each key may see ----------------------------------------------------------------


@pytest.fixture(scope="module")
def worker_key(served: Served) -> Iterator[str]:
    with _api(served) as api:
        created = api.post(
            "/v1/keys",
            json={"name": "worker-1's key", "scopes": ["read", "write"], "agent_id": served.seeded.worker_agent_id},
        )
        assert created.status_code == 201, created.text
        yield created.json()["api_key"]


def test_an_agent_bound_key_sees_its_own_agent_and_no_governance(served: Served, worker_key: str) -> None:
    seeded = served.seeded
    with signed_in(served.base, worker_key) as worker:
        mine = worker.get("/ui/agents")
        assert mine.status_code == 303 and mine.headers["location"] == f"/ui/agents/{seeded.worker_agent_id}"
        page = worker.get(mine.headers["location"])
        assert page.status_code == 200 and "handoff" in page.text and ">My agent<" in page.text
        assert worker.get(f"/ui/agents/{seeded.planner_agent_id}").status_code == 404
        assert 'href="/ui/governance"' not in page.text
        for path in ("/ui/governance", "/ui/governance/grants", "/ui/governance/retention", "/ui/governance/holds"):
            assert worker.get(path).status_code == 403, path


def test_looking_at_an_inbox_does_not_deliver_it(served: Served, admin: httpx.Client) -> None:
    """Only the agent's own read counts as delivery: the dashboard's view of its inbox is a peek, newest
    first, paged back to the oldest."""
    seeded = served.seeded
    with _api(served) as api:
        body = {
            "from_agent_id": seeded.planner_agent_id,
            "to_agent_id": seeded.worker_agent_id,
            "message_type": "peeked",
        }
        sent = api.post("/v1/agent-messages", json=body).json()
        page = admin.get(f"/ui/agents/{seeded.worker_agent_id}?unacked=true&limit=1")
        assert page.status_code == 200 and "peeked" in page.text and "handoff" not in page.text
        older = re.search(r'href="([^"]+)" rel="next"', page.text)
        assert older is not None
        assert "handoff" in admin.get(older.group(1).replace("&amp;", "&")).text  # the seeded, older message
        inbox = api.get(f"/v1/agents/{seeded.worker_agent_id}/inbox", params={"unacked": "true"}).json()["data"]
        assert next(m for m in inbox if m["id"] == sent["id"])["delivered_at"] is None


def test_a_read_key_may_not_cancel_and_another_org_sees_nothing(served: Served) -> None:
    seeded = served.seeded
    with _api(served) as api:
        reader = api.post("/v1/keys", json={"name": "reader of tasks", "scopes": ["read"]}).json()["api_key"]
        task = api.post("/v1/tasks", json={"title": "Keep going", "queue": "writing"}).json()
    with signed_in(served.base, reader) as client:
        page = client.get(f"/ui/tasks/{task['id']}")
        assert page.status_code == 200 and "Cancel task" not in page.text
        assert client.post(f"/ui/tasks/{task['id']}/cancel", data={"csrf": _token(page.text)}).status_code == 403
    with signed_in(served.base, served.other_key) as other:
        for path in (f"/ui/tasks/{task['id']}", f"/ui/agents/{seeded.worker_agent_id}"):
            assert other.get(path).status_code == 404, path
        assert "Keep going" not in other.get("/ui/tasks").text and "worker-1" not in other.get("/ui/agents").text


def test_a_grant_without_its_grantee_is_refused_by_name(served: Served, admin: httpx.Client) -> None:
    token = _token(admin.get("/ui/governance/grants").text)
    sent = {"csrf": token, "permission": "read", "resource": "memories", "grantee": "user", "grantee_id": ""}
    refused = admin.post("/ui/governance/grants", data=sent)
    assert refused.status_code == 422 and "grantee" in refused.text
    bad_filter = admin.get("/ui/tasks?colour=blue")
    assert bad_filter.status_code == 422 and "colour" in bad_filter.text


@pytest.fixture(scope="module")
def admin(served: Served) -> Iterator[httpx.Client]:
    with signed_in(served.base, served.key) as client:
        yield client

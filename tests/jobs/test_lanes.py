"""Lanes: one organization's backlog of webhook deliveries (to a slow receiver) holds up neither another
organization's extraction nor its deliveries, and no more than ``ENGRAM_WEBHOOK_ORG_CONCURRENCY`` of the
backlog is sent at once. The worker's webhook client is closed when the worker stops."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import pytest

from engramdb import limits
from engramdb.config import Settings
from engramdb.jobs import build_app, run_worker
from engramdb.services.webhooks import sender
from tests.conftest import OrgFactory
from tests.webhook_listener import Listener

pytestmark = pytest.mark.usefixtures("worker")

SLOW_S = 0.5  # each delivery of the backlog takes this long to answer
BACKLOG = 60  # with today's single queue at concurrency 2: 15 s before anything queued after it starts
ORG_SHARE = 2


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        worker_concurrency=2,
        webhook_concurrency=4,
        webhook_org_concurrency=ORG_SHARE,
        webhook_allow_networks=["127.0.0.1/32"],
        webhook_timeout_s=5,
        webhook_retry_base_s=0.2,
    )


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


async def test_a_delivery_backlog_holds_up_neither_extraction_nor_other_orgs(
    make_org: OrgFactory, listener: Listener, monkeypatch: pytest.MonkeyPatch
) -> None:
    noisy, quiet, other = await make_org(), await make_org(), await make_org()
    listener.delay("/slow", SLOW_S)
    hooks = []
    for _ in range(3):
        r = await noisy.client.post("/v1/webhooks", json={"url": listener.url("/slow")})
        assert r.status_code == 201, r.text
        hooks.append(r.json())
    for _ in range(BACKLOG // len(hooks)):
        for hook in hooks:
            assert (await noisy.client.post(f"/v1/webhooks/{hook['id']}/test")).status_code == 202
    try:
        await listener.wait_for("/slow", 1)  # the backlog is being worked

        # Another org's extraction, waited for, finishes promptly.
        monkeypatch.setattr(limits, "WAIT_TIMEOUT_S", 20)
        started = time.monotonic()
        session = (await quiet.client.post("/v1/sessions", json={"external_user_id": "ana"})).json()
        r = await quiet.client.post(
            f"/v1/sessions/{session['id']}/messages",
            params={"wait": "true"},
            json={"messages": [{"role": "user", "name": "Ana", "content": "I moved to Lisbon last month."}]},
        )
        job = r.json()["job"]
        assert job["status"] == "succeeded", job
        assert time.monotonic() - started < 8, job.get("wait")

        # Another org's delivery is sent while the backlog waits.
        started = time.monotonic()
        hook = (await other.client.post("/v1/webhooks", json={"url": listener.url("/other")})).json()
        await other.client.post(f"/v1/webhooks/{hook['id']}/test")
        await listener.wait_for("/other", 1, timeout_s=8)
        assert time.monotonic() - started < 5
        pending = 0
        for noisy_hook in hooks:
            log = await noisy.client.get(f"/v1/webhooks/{noisy_hook['id']}/deliveries", params={"status": "pending"})
            pending += len(log.json()["data"])
        assert pending > BACKLOG / 2  # still there: the others did not wait for it to drain
        assert listener.peak("/slow") == ORG_SHARE  # the noisy org's share of the lane, never more
    finally:
        for noisy_hook in hooks:  # drops the backlog
            await noisy.client.delete(f"/v1/webhooks/{noisy_hook['id']}")


async def test_the_webhook_client_is_closed_when_the_worker_stops(
    app, settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    closed: list[sender.Sender] = []
    real = sender.Sender.aclose

    async def aclose(self: sender.Sender) -> None:
        closed.append(self)
        await real(self)

    monkeypatch.setattr(sender.Sender, "aclose", aclose)
    task = asyncio.create_task(run_worker(build_app(database_url, settings), app.state.runtime, name="short"))
    await asyncio.sleep(0.5)
    assert closed == [] and not task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    (client,) = closed
    assert client.client.is_closed

"""What happens around a claim: an agent that goes silent is swept offline and loses its leases, and comes
back online with its next beat (each raising its webhook event once); a task that waits for input; a
completion sent twice; task events numbered after they commit and streamed in that order, so that claims
and completions never wait for the organization's event counter. No sleeping: the sweep is called
directly, and "silent" is a heartbeat moved into the past."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from engramdb.config import Settings
from engramdb.sdk import AsyncClient
from engramdb.sdk.errors import ConflictError
from engramdb.services.agents import history, sweep
from engramdb.storage.database import Database
from tests.api.agents.conftest import SdkFactory
from tests.conftest import OrgFactory

HOOK = "http://127.0.0.1:9/hooks"  # never called: no worker runs here; the delivery log is what is checked


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, auto_migrate=False, key_touch_interval_s=0, webhook_allow_networks=["127.0.0.1/32"]
    )


async def _deliveries(client: AsyncClient, webhook_id: Any, event_type: str) -> list[dict[str, Any]]:
    found = [d async for d in client.webhooks.deliveries(webhook_id, event_type=event_type)]
    return [d.payload["data"] for d in found]


async def _silent(db: Database, agent_id: Any, seconds: int) -> None:
    """The agent's last heartbeat, moved ``seconds`` into the past."""
    async with db.system() as conn:
        stmt = text("UPDATE agent SET last_heartbeat_at = now() - make_interval(secs => :s) WHERE id = :id")
        await conn.execute(stmt, {"s": seconds, "id": agent_id})


async def test_a_silent_agent_goes_offline_loses_its_leases_and_comes_back(
    make_org: OrgFactory, sdk: SdkFactory, app: FastAPI, db: Database
) -> None:
    rt = app.state.runtime
    admin = sdk((await make_org()).key)
    events = ["agent.offline", "agent.online", "task.lease_expired"]
    hook = await admin.webhooks.create(url=HOOK, event_types=events)
    worker = await admin.agents.create(name="worker", heartbeat_interval_s=2)
    spare = await admin.agents.create(name="spare")  # never beats: never swept offline
    task = await admin.tasks.create(title="index the wiki", queue="wiki")
    await admin.agents.heartbeat(worker.id, status="busy")
    claimed = await admin.tasks.claim(agent_id=worker.id, queue="wiki", lease_s=3600)
    assert claimed is not None and claimed.id == task.id

    await _silent(db, worker.id, 5)  # within 2 s × 3: still online
    await sweep.sweep(rt)
    assert (await admin.agents.get(worker.id)).status == "busy"
    assert (await admin.tasks.get(task.id)).state == "working"

    await _silent(db, worker.id, 7)  # past 2 s × 3
    assert (await admin.agents.get(worker.id)).status == "offline"  # computed on read, before any sweep
    await sweep.sweep(rt)
    await sweep.sweep(rt)  # a second sweep raises nothing again
    assert (await admin.agents.get(spare.id)).status == "inactive"
    offline = await _deliveries(admin, hook.id, "agent.offline")
    assert [d["agent"]["id"] for d in offline] == [str(worker.id)]
    # Its hour-long lease ended with it: the task is back in the queue, its attempt counted.
    back = await admin.tasks.get(task.id)
    assert (back.state, back.claimed_by, back.lease_id, back.attempts) == ("submitted", None, None, 1)
    kinds = [e.kind for e in await admin.tasks.history(task.id).to_list()]
    assert kinds == ["created", "claimed", "lease_expired"]
    assert [d["task"]["id"] for d in await _deliveries(admin, hook.id, "task.lease_expired")] == [str(task.id)]
    with pytest.raises(ConflictError):
        await admin.tasks.complete(task.id, lease_id=claimed.lease_id, result={})

    # The next beat brings it back online, once.
    ack = await admin.agents.heartbeat(worker.id, status="active")
    assert ack.status == "active" and (await admin.agents.get(worker.id)).status == "active"
    await admin.agents.heartbeat(worker.id, status="active")
    online = await _deliveries(admin, hook.id, "agent.online")
    assert [d["agent"]["id"] for d in online] == [str(worker.id)]
    again = await admin.tasks.claim(agent_id=spare.id, queue="wiki")
    assert again is not None and again.id == task.id and again.attempts == 2


async def test_a_task_waits_for_input_without_a_lease_then_goes_back_or_completes(
    make_org: OrgFactory, sdk: SdkFactory, app: FastAPI
) -> None:
    admin = sdk((await make_org()).key)
    hook = await admin.webhooks.create(url=HOOK, event_types=["task.input_required"])
    first, second = [await admin.agents.create(name=n) for n in ("first", "second")]
    asked = await admin.tasks.create(title="book the venue", queue="events")
    with pytest.raises(ConflictError):  # only a working task can wait for input
        await admin.tasks.update(asked.id, state="input-required")
    got = await admin.tasks.claim(agent_id=first.id, queue="events", lease_s=5)
    assert got is not None
    with pytest.raises(ConflictError):  # with its claim's lease only
        await admin.tasks.update(asked.id, state="input-required", lease_id=uuid.uuid4())
    waiting = await admin.tasks.update(asked.id, state="input-required", lease_id=got.lease_id, note="which date?")
    assert (waiting.state, waiting.claimed_by, waiting.lease_expires_at) == ("input-required", first.id, None)
    assert [d["task"]["id"] for d in await _deliveries(admin, hook.id, "task.input_required")] == [str(asked.id)]
    assert await admin.tasks.claim(agent_id=second.id, queue="events") is None  # not in the queue
    await sweep.sweep(app.state.runtime)
    assert (await admin.tasks.get(asked.id)).state == "input-required"  # no lease to run out

    # The input given, it goes back to the queue and anyone may take it.
    back = await admin.tasks.update(asked.id, state="submitted", note="the 12th")
    assert (back.state, back.claimed_by, back.lease_id) == ("submitted", None, None)
    retaken = await admin.tasks.claim(agent_id=second.id, queue="events")
    assert retaken is not None and retaken.id == asked.id and retaken.attempts == 2
    events = await admin.tasks.history(asked.id).to_list()
    assert [e.kind for e in events] == ["created", "claimed", "input_required", "resubmitted", "claimed"]
    assert events[2].details == {"note": "which date?"} and events[3].to_state == "submitted"

    # Or the claimer, given the input, completes it straight from waiting.
    other = await admin.tasks.create(title="order flowers", queue="events")
    held = await admin.tasks.claim(agent_id=first.id, queue="events")
    assert held is not None and held.id == other.id
    await admin.tasks.update(other.id, state="input-required", lease_id=held.lease_id)
    done = await admin.tasks.complete(other.id, result={"ordered": True})
    assert done.state == "completed" and done.result == {"ordered": True}


async def test_a_completion_sent_again_under_its_lease_changes_nothing(make_org: OrgFactory, sdk: SdkFactory) -> None:
    admin = sdk((await make_org()).key)
    agent = await admin.agents.create(name="a")
    await admin.tasks.create(title="t", queue="q")
    got = await admin.tasks.claim(agent_id=agent.id, queue="q")
    assert got is not None
    done = await admin.tasks.complete(got.id, lease_id=got.lease_id, result={"n": 1})
    repeat = await admin.tasks.complete(got.id, lease_id=got.lease_id, result={"n": 2})
    assert repeat.state == "completed" and repeat.result == {"n": 1} and repeat.completed_at == done.completed_at
    assert [e.kind for e in await admin.tasks.history(got.id).to_list()] == ["created", "claimed", "completed"]
    with pytest.raises(ConflictError):  # another lease is no repeat
        await admin.tasks.complete(got.id, lease_id=uuid.uuid4(), result={})


async def test_task_events_are_numbered_after_commit_and_streamed_in_that_order(
    make_org: OrgFactory, sdk: SdkFactory, app: FastAPI
) -> None:
    org = await make_org()
    admin = sdk(org.key)
    agent = await admin.agents.create(name="a")
    made = [await admin.tasks.create(title=f"t{i}", queue="numbered") for i in range(3)]
    got = await admin.tasks.claim(agent_id=agent.id, queue="numbered")
    assert got is not None
    # Written without a number (the writers took no lock for one), then numbered in the order written.
    assert [e.seq for e in await admin.tasks.history(made[0].id).to_list()] == [None, None]
    assert await history.sequence(app.state.runtime.db, org.id) == 4
    assert await history.sequence(app.state.runtime.db, org.id) == 0
    histories = [await admin.tasks.history(t.id).to_list() for t in made]
    assert [[e.seq for e in h] for h in histories] == [[1, 4], [2], [3]]

    # A stream numbers what was written since, and resumes after an id with nothing missed or repeated.
    await admin.tasks.complete(got.id, lease_id=got.lease_id, result={})
    await admin.tasks.cancel(made[2].id)
    seen = []
    async for event in admin.tasks.stream(queue="numbered", last_event_id=0, reconnect=False):
        seen.append(event)
        if len(seen) == 4:
            break
    assert [e.event for e in seen] == ["task.created", "task.created", "task.created", "task.claimed"]
    rest = []
    async for event in admin.tasks.stream(queue="numbered", last_event_id=seen[-1].id, reconnect=False):
        rest.append(event)
        if len(rest) == 2:
            break
    assert [e.event for e in rest] == ["task.completed", "task.canceled"]
    ids = [e.id for e in seen + rest]
    assert ids == sorted(ids) and len(set(ids)) == 6


async def test_claims_and_completions_never_wait_for_the_event_counter(
    make_org: OrgFactory, sdk: SdkFactory, app: FastAPI, db: Database
) -> None:
    org = await make_org()
    admin = sdk(org.key)
    a, b = [await admin.agents.create(name=n) for n in ("a", "b")]
    await admin.inbox.send(from_agent_id=a.id, to_agent_id=b.id, payload={})  # the counter row exists
    await admin.tasks.create(title="t", queue="free")
    async with db.system() as conn:  # another transaction holds the counter (a message being sent)
        await conn.execute(text("SELECT 1 FROM stream_seq WHERE org_id = :org FOR UPDATE"), {"org": org.id})
        got = await asyncio.wait_for(admin.tasks.claim(agent_id=a.id, queue="free"), timeout=10)
        assert got is not None
        done = await asyncio.wait_for(admin.tasks.complete(got.id, lease_id=got.lease_id, result={}), timeout=10)
        assert done.state == "completed"
        assert await history.sequence(app.state.runtime.db, org.id) is None  # numbering waits its turn
    assert await history.sequence(app.state.runtime.db, org.id) == 3

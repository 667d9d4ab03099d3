"""The issue's "done when": a planner creates tasks; two workers claim and complete them over the SDK while
streaming their inboxes; one worker dies holding a task and the other finishes it once the lease has run
out; every claim, state change and message is in the history or the audit log; another organization's
key gets 404 on all of it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from engramdb.schemas.agents import StreamEvent
from engramdb.sdk import AsyncClient, NotFoundError
from engramdb.sdk.errors import ConflictError
from tests.api.agents.conftest import SdkFactory
from tests.conftest import OrgFactory


async def _inbox_reader(client: AsyncClient, agent_id: str, seen: list[StreamEvent], ready: asyncio.Event) -> None:
    async for event in client.inbox.stream(agent_id):
        seen.append(event)
        ready.set()


async def test_planner_and_two_workers(make_org: OrgFactory, sdk: SdkFactory) -> None:
    org = await make_org()
    admin = sdk(org.key)
    team = await admin.teams.create(name="crew")
    planner = await admin.agents.create(name="planner", type="planner", team_id=team.id)
    workers = [
        await admin.agents.create(name=f"worker-{i}", type="worker", team_id=team.id, capabilities=["summarize"])
        for i in (1, 2)
    ]
    keys = {}
    for agent in (planner, *workers):
        keys[agent.name] = (await admin.keys.create(name=agent.name, agent_id=agent.id)).api_key
    p, w1, w2 = sdk(keys["planner"]), sdk(keys["worker-1"]), sdk(keys["worker-2"])

    # Both workers follow their inboxes live.
    seen: dict[str, list[StreamEvent]] = {"worker-1": [], "worker-2": []}
    ready = {name: asyncio.Event() for name in seen}
    readers = [
        asyncio.create_task(_inbox_reader(client, str(agent.id), seen[agent.name], ready[agent.name]))
        for client, agent in ((w1, workers[0]), (w2, workers[1]))
    ]
    try:
        for client, worker in ((w1, workers[0]), (w2, workers[1])):
            ack = await client.agents.heartbeat(worker.id, status="active", metrics={"load": 0.1})
            assert ack.status == "active"

        # The planner files three tasks; the third waits for the first two.
        first = await p.tasks.create(title="summarize A", queue="work", required_capabilities=["summarize"])
        second = await p.tasks.create(title="summarize B", queue="work", priority=5)
        third = await p.tasks.create(title="merge", queue="work", depends_on=[first.id, second.id])
        assert first.created_by == planner.id
        broadcast = await p.inbox.send(to_team_id=team.id, message_type="plan", payload={"tasks": 3})
        assert broadcast.recipients == 2  # the sender is not its own recipient
        for name in seen:
            await asyncio.wait_for(ready[name].wait(), timeout=10)
            assert [e.data["id"] for e in seen[name]] == [str(broadcast.id)]

        # Highest priority first; the merge waits for its dependencies.
        got1 = await w1.tasks.claim(queue="work", lease_s=1)
        assert got1 is not None and got1.id == second.id and got1.claimed_by == workers[0].id
        got2 = await w2.tasks.claim(queue="work", lease_s=30)
        assert got2 is not None and got2.id == first.id
        assert await w2.tasks.claim(queue="work") is None  # the merge is blocked

        # Worker 1 dies holding its task: its lease runs out and worker 2 takes the task over.
        await w2.tasks.complete(first.id, lease_id=got2.lease_id, result={"summary": "A in short"})
        await asyncio.sleep(1.2)
        again = await w2.tasks.claim(queue="work", lease_s=30)
        assert again is not None and again.id == second.id and again.attempts == 2
        assert again.claimed_by == workers[1].id and again.lease_id != got1.lease_id
        # The dead worker's lease no longer holds: it cannot complete what it lost.
        try:
            await w1.tasks.complete(second.id, lease_id=got1.lease_id, result={})
            raise AssertionError("a lost lease completed a task")
        except ConflictError:
            pass
        done = await w2.tasks.complete(second.id, lease_id=again.lease_id, result={"summary": "B"}, remember=True)
        assert done.state == "completed" and done.result_memory_id is not None
        memory = await admin.memories.get(done.result_memory_id)
        assert memory.type == "episodic" and memory.metadata["task_id"] == str(second.id)

        # The merge is eligible now.
        merge = await w1.tasks.claim(queue="work")
        assert merge is not None and merge.id == third.id
        await w1.inbox.send(
            to_agent_id=planner.id, message_type="status", payload={"merging": True}, reply_to=broadcast.id
        )
        await w1.tasks.complete(third.id, lease_id=merge.lease_id, result={"merged": True})

        # Every claim and state change is in the history.
        kinds = [e.kind for e in await admin.tasks.history(second.id).to_list()]
        assert kinds == ["created", "claimed", "lease_expired", "claimed", "completed"]
        # Every message is in the audit log.
        sent = [e async for e in admin.audit.list(action="agent_message.sent")]
        assert len(sent) == 2
        planner_inbox = await p.inbox.list(planner.id).to_list()
        assert [m.thread_id for m in planner_inbox] == [broadcast.id]

        # Acknowledging: the stream's first connection replays only what is unacknowledged.
        assert await w1.inbox.ack(workers[0].id, [broadcast.id]) == 1
        assert await w1.inbox.list(workers[0].id, unacked=True).to_list() == []
    finally:
        for reader in readers:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    # Another organization sees none of it.
    other = sdk((await make_org()).key)
    for call in (
        lambda: other.tasks.get(first.id),
        lambda: other.tasks.cancel(third.id),
        lambda: other.inbox.get(broadcast.id),
        lambda: other.inbox.list(workers[0].id).to_list(),
        lambda: other.agents.heartbeat(workers[0].id),
        lambda: other.tasks.history(first.id).to_list(),
    ):
        try:
            await call()
            raise AssertionError("another organization reached org A's agents")
        except NotFoundError:
            pass
    assert await other.tasks.list().to_list() == []


async def test_stream_resumes_after_last_event_id(make_org: OrgFactory, sdk: SdkFactory) -> None:
    org = await make_org()
    admin = sdk(org.key)
    a = await admin.agents.create(name="a")
    b = await admin.agents.create(name="b")
    sent = [await admin.inbox.send(from_agent_id=a.id, to_agent_id=b.id, payload={"n": i}) for i in range(3)]
    got: list[Any] = []
    async for event in admin.inbox.stream(b.id, reconnect=False):
        got.append(event)
        if len(got) == 2:
            break
    assert [e.data["payload"]["n"] for e in got] == [0, 1]
    # Reconnecting after the second event sends the third and then what comes next, nothing twice.
    later = asyncio.create_task(_later(admin, a.id, b.id))
    resumed: list[Any] = []
    async for event in admin.inbox.stream(b.id, last_event_id=got[-1].id, reconnect=False):
        resumed.append(event)
        if len(resumed) == 2:
            break
    await later
    assert [e.data["payload"]["n"] for e in resumed] == [2, 3]
    assert resumed[0].id == sent[2].seq


async def _later(client: AsyncClient, sender: Any, to: Any) -> None:
    await asyncio.sleep(0.2)
    await client.inbox.send(from_agent_id=sender, to_agent_id=to, payload={"n": 3})

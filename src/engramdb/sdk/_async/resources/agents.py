"""Agents at work: ``client.tasks`` (queues, claims, leases), ``client.inbox`` (mailboxes) and the live
streams (``client.inbox.stream(agent_id)``, ``client.tasks.stream(queue=…)``); heartbeats are
``client.agents.heartbeat``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from engramdb.schemas.agents import (
    Acked,
    AgentMessage,
    AgentMessageCreate,
    InboxAck,
    InboxFilters,
    InboxItem,
    LeaseExtend,
    StreamEvent,
    Task,
    TaskCancel,
    TaskClaim,
    TaskClaimed,
    TaskComplete,
    TaskCreate,
    TaskEvent,
    TaskEventFilters,
    TaskFail,
    TaskFilters,
    TaskUpdate,
)
from engramdb.sdk import _common as c
from engramdb.sdk._async.http import AsyncHTTP
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._async.resources.base import Fields, Resource
from engramdb.sdk._common import Id
from engramdb.sdk.errors import APIConnectionError, APITimeoutError


async def follow(
    client: AsyncHTTP, path: str, params: Mapping[str, Any], *, last_event_id: int | None, reconnect: bool
) -> AsyncIterator[StreamEvent]:
    """The events of a live stream. When the connection breaks it reconnects (up to the client's
    ``max_retries`` times in a row, with backoff) sending the last event id it saw, so nothing is
    missed and nothing repeated."""
    last = last_event_id
    failures = 0
    while True:
        headers = {"Last-Event-ID": str(last)} if last is not None else {}
        try:
            async with client.stream("GET", path, params=params, headers=headers) as response:
                parser = c.SSEParser()
                async for line in response.aiter_lines():
                    found = parser.feed(line)
                    if found is not None:
                        failures = 0
                        last = found["id"]
                        yield StreamEvent.model_validate(found)
        except (APIConnectionError, APITimeoutError):
            if not reconnect or failures >= client.max_retries:
                raise
            failures += 1
            await asyncio.sleep(c.backoff_s(failures, None))
            continue
        if not reconnect:
            return


class Tasks(Resource):
    """Tasks on named queues: create them, claim the next one with a lease, complete or fail it."""

    @c.operation("create_task")
    async def create(self, task: TaskCreate | None = None, /, **fields: Fields) -> Task:
        return await self._client.call(Task, "POST", "/v1/tasks", json=c.body(TaskCreate, task, fields))

    @c.operation("list_tasks")
    def list(self, filters: TaskFilters | None = None, /, **fields: Fields) -> AsyncPager[Task]:
        """Newest first. ``fields``: queue, state, assigned_to, claimed_by, created_by, user_id, cursor, limit."""
        return AsyncPager(self._client, "/v1/tasks", Task, c.filters(TaskFilters, filters, fields))

    @c.operation("get_task")
    async def get(self, task_id: Id) -> Task:
        return await self._client.call(Task, "GET", f"/v1/tasks/{c.path_id(task_id)}")

    @c.operation("update_task")
    async def update(self, task_id: Id, change: TaskUpdate | None = None, /, **fields: Fields) -> Task:
        sent = c.body(TaskUpdate, change, fields)
        return await self._client.call(Task, "PATCH", f"/v1/tasks/{c.path_id(task_id)}", json=sent)

    @c.operation("claim_task")
    async def claim(self, claim: TaskClaim | None = None, /, **fields: Fields) -> Task | None:
        """The next eligible task, now leased to the agent (``lease_id``, ``lease_expires_at``), or None.

        Sent without an ``Idempotency-Key`` (one record fewer per claim): a claim whose answer was lost is
        retried as a new claim, and the task the lost answer held comes back when its lease runs out."""
        sent = c.body(TaskClaim, claim, fields)
        answer = await self._client.call(TaskClaimed, "POST", "/v1/tasks/claim", json=sent, idempotent=True)
        return answer.task

    @c.operation("extend_task_lease")
    async def extend(self, task_id: Id, lease: LeaseExtend | None = None, /, **fields: Fields) -> Task:
        sent = c.body(LeaseExtend, lease, fields)
        return await self._client.call(Task, "POST", f"/v1/tasks/{c.path_id(task_id)}/lease", json=sent)

    @c.operation("complete_task")
    async def complete(self, task_id: Id, done: TaskComplete | None = None, /, **fields: Fields) -> Task:
        """Sent without an ``Idempotency-Key``: completing again under the same lease returns the completed
        task, so a retry is safe by itself."""
        sent = c.body(TaskComplete, done, fields)
        path = f"/v1/tasks/{c.path_id(task_id)}/complete"
        return await self._client.call(Task, "POST", path, json=sent, idempotent=True)

    @c.operation("fail_task")
    async def fail(self, task_id: Id, failure: TaskFail | None = None, /, **fields: Fields) -> Task:
        sent = c.body(TaskFail, failure, fields)
        return await self._client.call(Task, "POST", f"/v1/tasks/{c.path_id(task_id)}/fail", json=sent)

    @c.operation("cancel_task")
    async def cancel(self, task_id: Id, cancel: TaskCancel | None = None, /, **fields: Fields) -> Task:
        sent = c.body(TaskCancel, cancel, fields)
        return await self._client.call(Task, "POST", f"/v1/tasks/{c.path_id(task_id)}/cancel", json=sent)

    @c.operation("list_task_history")
    def history(
        self, task_id: Id, filters: TaskEventFilters | None = None, /, **fields: Fields
    ) -> AsyncPager[TaskEvent]:
        """Every state change of the task, oldest first."""
        path = f"/v1/tasks/{c.path_id(task_id)}/history"
        return AsyncPager(self._client, path, TaskEvent, c.filters(TaskEventFilters, filters, fields))

    @c.operation("stream_tasks")
    def stream(
        self, *, queue: str | None = None, last_event_id: int | None = None, reconnect: bool = True
    ) -> AsyncIterator[StreamEvent]:
        """Task events as they happen (``async for event in client.tasks.stream(queue="q")``); resumes after
        ``last_event_id`` when given."""
        return follow(
            self._client, "/v1/tasks/stream", {"queue": queue}, last_event_id=last_event_id, reconnect=reconnect
        )


class Inbox(Resource):
    """Agents' mailboxes: send messages, read and acknowledge an inbox, follow it live."""

    @c.operation("send_agent_message")
    async def send(self, message: AgentMessageCreate | None = None, /, **fields: Fields) -> AgentMessage:
        sent = c.body(AgentMessageCreate, message, fields)
        return await self._client.call(AgentMessage, "POST", "/v1/agent-messages", json=sent)

    @c.operation("get_agent_message")
    async def get(self, message_id: Id) -> AgentMessage:
        return await self._client.call(AgentMessage, "GET", f"/v1/agent-messages/{c.path_id(message_id)}")

    @c.operation("list_inbox")
    def list(self, agent_id: Id, filters: InboxFilters | None = None, /, **fields: Fields) -> AsyncPager[InboxItem]:
        """Oldest first. ``fields``: unacked, message_type, thread_id, cursor, limit."""
        path = f"/v1/agents/{c.path_id(agent_id)}/inbox"
        return AsyncPager(self._client, path, InboxItem, c.filters(InboxFilters, filters, fields))

    @c.operation("ack_inbox")
    async def ack(self, agent_id: Id, message_ids: Sequence[Id]) -> int:
        """Acknowledge messages; returns how many were newly acknowledged."""
        sent = c.body(InboxAck, None, {"message_ids": list(message_ids)})
        path = f"/v1/agents/{c.path_id(agent_id)}/inbox/ack"
        return (await self._client.call(Acked, "POST", path, json=sent, idempotent=True)).acked

    @c.operation("stream_inbox")
    def stream(
        self, agent_id: Id, *, last_event_id: int | None = None, reconnect: bool = True
    ) -> AsyncIterator[StreamEvent]:
        """The agent's messages as they arrive (``event.data`` is an inbox item); a first connection starts
        with the messages not yet acknowledged, a resumed one after ``last_event_id``."""
        path = f"/v1/agents/{c.path_id(agent_id)}/inbox/stream"
        return follow(self._client, path, {}, last_event_id=last_event_id, reconnect=reconnect)

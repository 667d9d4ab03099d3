"""Agents at work: heartbeats, tasks and their claims, mailboxes, and the live streams (Server-Sent Events)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from engramdb import limits
from engramdb.api.deps import CallerDep, DbDep, RuntimeDep
from engramdb.schemas.agents import (
    Acked,
    AgentMessage,
    AgentMessageCreate,
    Heartbeat,
    HeartbeatAck,
    InboxAck,
    InboxFilters,
    InboxItem,
    InboxStreamQuery,
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
    TaskStreamQuery,
    TaskUpdate,
)
from engramdb.schemas.common import Page
from engramdb.services.agents import claims, heartbeats, history, mailboxes, streams, tasks

LastEventId = Annotated[
    int | None,
    Header(alias="Last-Event-ID", ge=0, description="Resume a stream after this event id (sent by EventSource)."),
]
_SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events, until the client leaves"}
}


def _sse(events: AsyncIterator[StreamEvent]) -> EventSourceResponse:
    async def encoded() -> AsyncIterator[ServerSentEvent]:
        async for item in events:
            yield ServerSentEvent(data=json.dumps(item.data, separators=(",", ":")), event=item.event, id=str(item.id))

    # X-Accel-Buffering: a proxy (nginx) must pass events on as they come.
    return EventSourceResponse(encoded(), ping=limits.STREAM_KEEPALIVE_S, headers={"X-Accel-Buffering": "no"})


agents_router = APIRouter(prefix="/agents", tags=["agents"])


@agents_router.post(
    "/{agent_id}/heartbeat",
    response_model=HeartbeatAck,
    operation_id="agent_heartbeat",
    summary="An agent is alive: its status and metrics (one row update, no audit row)",
)
async def agent_heartbeat(agent_id: uuid.UUID, body: Heartbeat, db: DbDep, caller: CallerDep) -> HeartbeatAck:
    return await heartbeats.beat(db, caller, agent_id, body)


@agents_router.get(
    "/{agent_id}/inbox",
    response_model=Page[InboxItem],
    operation_id="list_inbox",
    summary="An agent's inbox, oldest first (what it returns counts as delivered)",
)
async def list_inbox(
    agent_id: uuid.UUID, filters: Annotated[InboxFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[InboxItem]:
    return await mailboxes.inbox(db, caller, agent_id, filters)


@agents_router.post(
    "/{agent_id}/inbox/ack",
    response_model=Acked,
    operation_id="ack_inbox",
    summary="Acknowledge messages of an agent's inbox",
)
async def ack_inbox(agent_id: uuid.UUID, body: InboxAck, db: DbDep, caller: CallerDep) -> Acked:
    return await mailboxes.ack(db, caller, agent_id, body)


@agents_router.get(
    "/{agent_id}/inbox/stream",
    response_class=EventSourceResponse,
    responses=_SSE,
    operation_id="stream_inbox",
    summary="An agent's messages as they arrive (Server-Sent Events, resumable with Last-Event-ID)",
)
async def stream_inbox(
    agent_id: uuid.UUID,
    query: Annotated[InboxStreamQuery, Query()],
    rt: RuntimeDep,
    caller: CallerDep,
    last_event_id: LastEventId = None,
) -> EventSourceResponse:
    after = last_event_id if last_event_id is not None else query.after
    return _sse(await streams.inbox(rt, caller, agent_id, after))


messages_router = APIRouter(prefix="/agent-messages", tags=["agent messages"])


@messages_router.post(
    "",
    status_code=201,
    response_model=AgentMessage,
    operation_id="send_agent_message",
    summary="Send a message to an agent, a team's agents or every agent",
)
async def send_agent_message(body: AgentMessageCreate, db: DbDep, caller: CallerDep) -> AgentMessage:
    return await mailboxes.send(db, caller, body)


@messages_router.get(
    "/{message_id}", response_model=AgentMessage, operation_id="get_agent_message", summary="Get an agent message"
)
async def get_agent_message(message_id: uuid.UUID, db: DbDep, caller: CallerDep) -> AgentMessage:
    return await mailboxes.get(db, caller, message_id)


tasks_router = APIRouter(prefix="/tasks", tags=["tasks"])


@tasks_router.post("", status_code=201, response_model=Task, operation_id="create_task", summary="Create a task")
async def create_task(body: TaskCreate, rt: RuntimeDep, caller: CallerDep) -> Task:
    return await tasks.create(rt, caller, body)


@tasks_router.get("", response_model=Page[Task], operation_id="list_tasks", summary="List tasks, newest first")
async def list_tasks(filters: Annotated[TaskFilters, Query()], db: DbDep, caller: CallerDep) -> Page[Task]:
    return await tasks.list_tasks(db, caller, filters)


@tasks_router.post(
    "/claim",
    response_model=TaskClaimed,
    operation_id="claim_task",
    summary="Claim the next eligible task with a lease (task is null when none is eligible)",
)
async def claim_task(body: TaskClaim, rt: RuntimeDep, caller: CallerDep) -> TaskClaimed:
    return await claims.claim(rt, caller, body)


@tasks_router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses=_SSE,
    operation_id="stream_tasks",
    summary="Task events as they happen (Server-Sent Events, resumable with Last-Event-ID)",
)
async def stream_tasks(
    query: Annotated[TaskStreamQuery, Query()], rt: RuntimeDep, caller: CallerDep, last_event_id: LastEventId = None
) -> EventSourceResponse:
    after = last_event_id if last_event_id is not None else query.after
    return _sse(await streams.tasks(rt, caller, query.queue, after))


@tasks_router.get("/{task_id}", response_model=Task, operation_id="get_task", summary="Get a task")
async def get_task(task_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Task:
    return await tasks.get(db, caller, task_id)


@tasks_router.patch(
    "/{task_id}",
    response_model=Task,
    operation_id="update_task",
    summary="Change a task (or move it to input-required, and back to the queue)",
)
async def update_task(task_id: uuid.UUID, body: TaskUpdate, rt: RuntimeDep, caller: CallerDep) -> Task:
    return await tasks.update_task(rt, caller, task_id, body)


@tasks_router.post(
    "/{task_id}/lease", response_model=Task, operation_id="extend_task_lease", summary="Extend a claim's lease"
)
async def extend_task_lease(task_id: uuid.UUID, body: LeaseExtend, rt: RuntimeDep, caller: CallerDep) -> Task:
    return await claims.extend(rt, caller, task_id, body)


@tasks_router.post(
    "/{task_id}/complete",
    response_model=Task,
    operation_id="complete_task",
    summary="Complete a claimed task with its result (optionally remembered as an episodic memory)",
)
async def complete_task(task_id: uuid.UUID, body: TaskComplete, rt: RuntimeDep, caller: CallerDep) -> Task:
    return await claims.complete(rt, caller, task_id, body)


@tasks_router.post(
    "/{task_id}/fail", response_model=Task, operation_id="fail_task", summary="Fail a claimed task (or retry it)"
)
async def fail_task(task_id: uuid.UUID, body: TaskFail, rt: RuntimeDep, caller: CallerDep) -> Task:
    return await claims.fail(rt, caller, task_id, body)


@tasks_router.post("/{task_id}/cancel", response_model=Task, operation_id="cancel_task", summary="Cancel a task")
async def cancel_task(task_id: uuid.UUID, body: TaskCancel, rt: RuntimeDep, caller: CallerDep) -> Task:
    return await tasks.cancel(rt, caller, task_id, body)


@tasks_router.get(
    "/{task_id}/history",
    response_model=Page[TaskEvent],
    operation_id="list_task_history",
    summary="Every state change of a task, oldest first",
)
async def list_task_history(
    task_id: uuid.UUID, filters: Annotated[TaskEventFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[TaskEvent]:
    return await history.list_events(db, caller, task_id, filters)

"""Agents at work: heartbeats, tasks on queues (claimed with a lease), mailboxes and their live streams.

Task states are named as A2A v1.0 and MCP Tasks name them: ``submitted → working → input-required →
completed | failed | canceled``.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from engramdb import limits
from engramdb.schemas.common import (
    Description,
    Metadata,
    Name,
    NotClearable,
    PageQuery,
    PublicModel,
    StrictModel,
    Tag,
    Timestamp,
)
from engramdb.schemas.directory import AgentStatus

TaskState = Literal["submitted", "working", "input-required", "completed", "failed", "canceled"]
TERMINAL_STATES: tuple[TaskState, ...] = ("completed", "failed", "canceled")
QueueName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_TAG_CHARS, pattern=r"^[\w.:-]+$"),
    Field(description="A queue's name: letters, digits, '_', '.', ':' or '-'."),
]
Capabilities = Annotated[list[Tag], Field(max_length=limits.MAX_TAGS)]
LeaseSeconds = Annotated[
    int, Field(ge=limits.MIN_LEASE_S, le=limits.MAX_LEASE_S, description="How long the lease lasts, seconds.")
]
Citations = Annotated[list[uuid.UUID], Field(max_length=limits.MAX_TASK_CITATIONS)]


def _small_json(value: Any) -> Any:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limits.MAX_PAYLOAD_BYTES:
        raise ValueError(f"{size} bytes as JSON; the limit is {limits.MAX_PAYLOAD_BYTES}")
    return value


Payload = Annotated[Metadata, AfterValidator(_small_json)]


# --- heartbeats --------------------------------------------------------------------------------------------


class Heartbeat(StrictModel):
    status: Literal["active", "busy", "error"] = Field(default="active", description="What the agent is doing.")
    metrics: Metadata | None = Field(default=None, description="Replaces the agent's metrics when given.")


class HeartbeatAck(PublicModel):
    agent_id: uuid.UUID
    status: AgentStatus
    last_heartbeat_at: datetime
    next_heartbeat_before: datetime = Field(description="Beat again before this, or be taken as offline.")


# --- tasks -------------------------------------------------------------------------------------------------


class TaskCreate(StrictModel):
    title: Name
    description: Description | None = None
    queue: QueueName = "default"
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher is claimed first.")
    required_capabilities: Capabilities = Field(
        default_factory=list, description="A claimer must have every one of these."
    )
    user_id: uuid.UUID | None = Field(default=None, description="The user this task is for, if any.")
    created_by: uuid.UUID | None = Field(
        default=None, description="The agent creating it (an agent-bound key's own agent by default)."
    )
    assigned_to: uuid.UUID | None = Field(default=None, description="Only this agent may claim it.")
    depends_on: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=limits.MAX_TASK_DEPENDENCIES,
        description="Tasks that must be completed before this one can be claimed.",
    )
    due_at: Timestamp | None = None
    max_attempts: int = Field(default=3, ge=1, le=limits.MAX_TASK_ATTEMPTS)
    session_ids: Citations = Field(default_factory=list, description="Sessions the task cites.")
    memory_ids: Citations = Field(default_factory=list, description="Memories the task cites.")
    document_ids: Citations = Field(default_factory=list, description="Documents the task cites.")
    metadata: Metadata = Field(default_factory=dict)


class TaskUpdate(StrictModel):
    title: NotClearable[Name] = None
    description: Description | None = None
    priority: NotClearable[Annotated[int, Field(ge=-1000, le=1000)]] = None
    assigned_to: uuid.UUID | None = None
    due_at: Timestamp | None = None
    max_attempts: NotClearable[Annotated[int, Field(ge=1, le=limits.MAX_TASK_ATTEMPTS)]] = None
    metadata: NotClearable[Metadata] = None
    state: Literal["input-required", "submitted"] | None = Field(
        default=None,
        description="`input-required`: the claimer needs input (send lease_id); `submitted`: back to the queue "
        "once it is given.",
    )
    lease_id: uuid.UUID | None = Field(default=None, description="The claim's lease, to move a working task.")
    note: Description | None = Field(default=None, description="Kept in the task's history with the change.")


class Task(PublicModel):
    id: uuid.UUID
    queue: str
    title: str
    description: str | None
    priority: int
    required_capabilities: list[str]
    state: TaskState
    user_id: uuid.UUID | None
    created_by: uuid.UUID | None
    assigned_to: uuid.UUID | None
    claimed_by: uuid.UUID | None
    lease_id: uuid.UUID | None
    lease_expires_at: datetime | None
    depends_on: list[uuid.UUID] = Field(default_factory=list)
    due_at: datetime | None
    session_ids: list[uuid.UUID]
    memory_ids: list[uuid.UUID]
    document_ids: list[uuid.UUID]
    metadata: dict[str, object]
    result: dict[str, object] | None
    error: str | None
    attempts: int
    max_attempts: int
    result_memory_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class TaskFilters(PageQuery):
    """``GET /tasks``, newest first."""

    queue: QueueName | None = None
    state: TaskState | None = None
    assigned_to: uuid.UUID | None = None
    claimed_by: uuid.UUID | None = None
    created_by: uuid.UUID | None = None
    user_id: uuid.UUID | None = None


class TaskClaim(StrictModel):
    agent_id: uuid.UUID | None = Field(
        default=None, description="The claiming agent (an agent-bound key's own agent by default)."
    )
    queue: QueueName | None = Field(default=None, description="Claim from this queue only; default any queue.")
    capabilities: Capabilities | None = Field(
        default=None, description="What the claimer can do; default the agent's own capabilities."
    )
    lease_s: LeaseSeconds = limits.DEFAULT_LEASE_S


class TaskClaimed(PublicModel):
    task: Task | None = Field(description="The claimed task, or null when none is eligible.")


class LeaseExtend(StrictModel):
    lease_id: uuid.UUID
    lease_s: LeaseSeconds = limits.DEFAULT_LEASE_S


class TaskComplete(StrictModel):
    lease_id: uuid.UUID | None = Field(
        default=None, description="The claim's lease; required unless the task is waiting for input."
    )
    result: Payload = Field(default_factory=dict)
    remember: bool = Field(
        default=False, description="Also record the result as an episodic memory with provenance to the task."
    )
    summary: Annotated[str, StringConstraints(min_length=1, max_length=limits.MAX_MEMORY_CHARS)] | None = Field(
        default=None, description="The memory's text when remember is set (default: title and result)."
    )


class TaskFail(StrictModel):
    lease_id: uuid.UUID | None = None
    error: Description = Field(min_length=1)
    retry: bool = Field(default=False, description="Return it to the queue if attempts remain.")


class TaskCancel(StrictModel):
    reason: Description | None = None


class TaskEvent(PublicModel):
    seq: int | None = Field(
        description="Increases with every task event and message of the organization: the event's place in "
        "the task stream. Null for the few milliseconds before the event is numbered (after it commits)."
    )
    task_id: uuid.UUID
    queue: str
    kind: str = Field(description="created, claimed, lease_extended, lease_expired, updated, completed, failed …")
    from_state: TaskState | None
    to_state: TaskState
    agent_id: uuid.UUID | None
    key_id: uuid.UUID | None
    actor: str
    details: dict[str, object]
    created_at: datetime


class TaskEventFilters(PageQuery):
    """``GET /tasks/{id}/history``: oldest first."""


class TaskStreamQuery(StrictModel):
    queue: QueueName | None = Field(default=None, description="Only this queue's events.")
    after: int | None = Field(
        default=None, ge=0, description="Resume after this event id (as Last-Event-ID, for clients that cannot set it)."
    )


# --- mailboxes ---------------------------------------------------------------------------------------------

MessageType = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_TAG_CHARS)]


class AgentMessageCreate(StrictModel):
    from_agent_id: uuid.UUID | None = Field(
        default=None, description="The sender (an agent-bound key's own agent by default)."
    )
    to_agent_id: uuid.UUID | None = Field(default=None, description="A direct message to this agent.")
    to_team_id: uuid.UUID | None = Field(default=None, description="A broadcast to this team's agents.")
    broadcast: bool = Field(default=False, description="A broadcast to every agent of the organization.")
    message_type: MessageType = "message"
    payload: Payload = Field(default_factory=dict)
    reply_to: uuid.UUID | None = Field(default=None, description="The message this answers (its thread).")
    task_id: uuid.UUID | None = Field(default=None, description="A task the message is about.")

    @model_validator(mode="after")
    def _one_recipient(self) -> AgentMessageCreate:
        named = sum((self.to_agent_id is not None, self.to_team_id is not None, self.broadcast))
        if named != 1:
            raise ValueError("name exactly one of to_agent_id, to_team_id or broadcast: true")
        return self


class AgentMessage(PublicModel):
    id: uuid.UUID
    seq: int
    from_agent_id: uuid.UUID | None
    to_agent_id: uuid.UUID | None
    to_team_id: uuid.UUID | None
    broadcast: bool
    message_type: str
    payload: dict[str, object]
    reply_to: uuid.UUID | None
    thread_id: uuid.UUID
    task_id: uuid.UUID | None
    created_at: datetime
    recipients: int | None = Field(default=None, description="How many inboxes it went to (to its sender).")


class InboxItem(AgentMessage):
    delivered_at: datetime | None
    acked_at: datetime | None


class InboxFilters(PageQuery):
    """``GET /agents/{id}/inbox``: oldest first (the order they arrived)."""

    unacked: bool = Field(default=False, description="Only messages not yet acknowledged.")
    message_type: MessageType | None = None
    thread_id: uuid.UUID | None = None


class InboxStreamQuery(StrictModel):
    after: int | None = Field(
        default=None, ge=0, description="Resume after this event id (as Last-Event-ID, for clients that cannot set it)."
    )


class InboxAck(StrictModel):
    message_ids: list[uuid.UUID] = Field(min_length=1, max_length=limits.MAX_ACK_IDS)


class Acked(PublicModel):
    acked: int = Field(description="Messages newly acknowledged (already acknowledged ones are not counted).")


class StreamEvent(PublicModel):
    """One Server-Sent Event: ``id`` is the ``seq`` to resume after."""

    id: int
    event: str
    data: dict[str, Any]

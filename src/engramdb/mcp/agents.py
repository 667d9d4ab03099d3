"""The tools of agents at work: heartbeats, claiming and finishing tasks, messages between agents. Each
calls the service its REST route calls; with a key bound to an agent, the key is the agent and the
agent arguments may be left out."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from mcp.types import CallToolResult
from pydantic import Field

from engramdb import limits
from engramdb.errors import ValidationFailed
from engramdb.mcp.base import Ctx, Resolver, result, tool_errors
from engramdb.schemas.agents import (
    AgentMessage,
    AgentMessageCreate,
    Heartbeat,
    HeartbeatAck,
    InboxAck,
    InboxFilters,
    InboxItem,
    LeaseExtend,
    Task,
    TaskClaim,
    TaskClaimed,
    TaskComplete,
    TaskUpdate,
)
from engramdb.schemas.common import Page
from engramdb.services.agents import claims, heartbeats, mailboxes, tasks

AgentArg = Annotated[
    uuid.UUID | None,
    Field(description="The agent acting; leave it out when the API key is bound to an agent (the key decides)."),
]
LeaseId = Annotated[uuid.UUID, Field(description="The lease_id claim_task returned with the task.")]


def _agent(bound_agent: uuid.UUID | None, given: uuid.UUID | None) -> uuid.UUID:
    agent = given or bound_agent
    if agent is None:
        raise ValidationFailed("name the agent (agent_id): this API key is not bound to one")
    return agent


class AgentTools:
    _resolve: Resolver

    async def heartbeat(
        self,
        ctx: Ctx,
        status: Annotated[Literal["active", "busy", "error"], Field(description="What the agent is doing.")] = "active",
        metrics: Annotated[
            dict[str, Any] | None, Field(description="Numbers worth showing, e.g. {'queue': 3}.")
        ] = None,
        agent_id: AgentArg = None,
    ) -> Annotated[CallToolResult, HeartbeatAck]:
        """Tell Engram this agent is alive and what it is doing. Call it more often than the agent's
        heartbeat interval (next_heartbeat_before says by when), or the agent is taken as offline and the
        leases of the tasks it holds run out."""
        with tool_errors():
            bound = await self._resolve(ctx)
            agent = _agent(bound.caller.agent_id, agent_id)
            ack = await heartbeats.beat(
                bound.runtime.db, bound.caller, agent, Heartbeat(status=status, metrics=metrics)
            )
            return result(ack)

    async def claim_task(
        self,
        ctx: Ctx,
        queue: Annotated[str | None, Field(description="Claim from this queue only; default any queue.")] = None,
        lease_s: Annotated[
            int, Field(ge=limits.MIN_LEASE_S, le=limits.MAX_LEASE_S, description="Seconds the claim lasts.")
        ] = limits.DEFAULT_LEASE_S,
        agent_id: AgentArg = None,
    ) -> Annotated[CallToolResult, TaskClaimed]:
        """Take the next task to work on: the highest-priority, oldest task of the queue that this agent may
        do. It is yours until its lease runs out: finish it with complete_task (or update_task to extend the
        lease or ask for input) before then, or another agent gets it. Returns task null when none waits."""
        with tool_errors():
            bound = await self._resolve(ctx)
            body = TaskClaim(agent_id=agent_id, queue=queue, lease_s=lease_s)
            return result(await claims.claim(bound.runtime, bound.caller, body))

    async def update_task(
        self,
        ctx: Ctx,
        task_id: Annotated[uuid.UUID, Field(description="The task's id.")],
        lease_id: LeaseId,
        extend_lease_s: Annotated[
            int | None,
            Field(ge=limits.MIN_LEASE_S, le=limits.MAX_LEASE_S, description="Keep the task this many seconds more."),
        ] = None,
        needs_input: Annotated[
            str | None, Field(description="Set to say what input the task waits for (state input-required).")
        ] = None,
    ) -> Annotated[CallToolResult, Task]:
        """Keep working on a claimed task longer (extend_lease_s), or stop because it needs input from
        someone (needs_input: what is missing)."""
        with tool_errors():
            bound = await self._resolve(ctx)
            rt, caller = bound.runtime, bound.caller
            if needs_input is not None:
                change = TaskUpdate(state="input-required", lease_id=lease_id, note=needs_input)
                return result(await tasks.update_task(rt, caller, task_id, change))
            lease = LeaseExtend(lease_id=lease_id, lease_s=extend_lease_s or limits.DEFAULT_LEASE_S)
            return result(await claims.extend(rt, caller, task_id, lease))

    async def complete_task(
        self,
        ctx: Ctx,
        task_id: Annotated[uuid.UUID, Field(description="The task's id.")],
        lease_id: LeaseId,
        result_data: Annotated[dict[str, Any] | None, Field(description="What the task produced, as JSON.")] = None,
        remember: Annotated[
            bool, Field(description="Also keep the result as an episodic memory, linked to the task.")
        ] = False,
        summary: Annotated[str | None, Field(description="The memory's text when remember is set.")] = None,
    ) -> Annotated[CallToolResult, Task]:
        """Finish a task you claimed, with its result. Tasks waiting for it become claimable."""
        with tool_errors():
            bound = await self._resolve(ctx)
            body = TaskComplete(lease_id=lease_id, result=result_data or {}, remember=remember, summary=summary)
            return result(await claims.complete(bound.runtime, bound.caller, task_id, body))

    async def send_message(
        self,
        ctx: Ctx,
        payload: Annotated[dict[str, Any], Field(description="The message, as a JSON object.")],
        to_agent_id: Annotated[uuid.UUID | None, Field(description="Send to this agent.")] = None,
        to_team_id: Annotated[uuid.UUID | None, Field(description="Send to every agent of this team.")] = None,
        broadcast: Annotated[bool, Field(description="Send to every agent of the organization.")] = False,
        message_type: Annotated[str, Field(max_length=limits.MAX_TAG_CHARS, description="A label.")] = "message",
        reply_to: Annotated[uuid.UUID | None, Field(description="The message this answers.")] = None,
        from_agent_id: AgentArg = None,
    ) -> Annotated[CallToolResult, AgentMessage]:
        """Send a message to another agent, to a team's agents or to every agent (name exactly one). It
        lands in their inboxes (read_inbox) and on their live streams."""
        with tool_errors():
            bound = await self._resolve(ctx)
            body = AgentMessageCreate(
                from_agent_id=from_agent_id,
                to_agent_id=to_agent_id,
                to_team_id=to_team_id,
                broadcast=broadcast,
                message_type=message_type,
                payload=payload,
                reply_to=reply_to,
            )
            return result(await mailboxes.send(bound.runtime.db, bound.caller, body))

    async def read_inbox(
        self,
        ctx: Ctx,
        unacked_only: Annotated[bool, Field(description="Only messages not yet acknowledged.")] = True,
        acknowledge: Annotated[bool, Field(description="Acknowledge what is returned.")] = False,
        limit: Annotated[int, Field(ge=1, le=limits.MAX_PAGE_SIZE, description="How many to return.")] = 20,
        agent_id: AgentArg = None,
    ) -> Annotated[CallToolResult, Page[InboxItem]]:
        """Read this agent's inbox, oldest first: direct messages and its team's and organization's
        broadcasts. Acknowledge them (acknowledge: true) once handled, so they are not read again."""
        with tool_errors():
            bound = await self._resolve(ctx)
            rt, caller = bound.runtime, bound.caller
            agent = _agent(caller.agent_id, agent_id)
            page = await mailboxes.inbox(rt.db, caller, agent, InboxFilters(unacked=unacked_only, limit=limit))
            if acknowledge and page.data:
                await mailboxes.ack(rt.db, caller, agent, InboxAck(message_ids=[m.id for m in page.data]))
            return result(page)

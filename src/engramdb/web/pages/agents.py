"""Agents at work: the agents with their status and last heartbeat, an agent's tasks and inbox, the tasks
on their queues (filtered as the API filters them) and a task's history, with cancel.

The agent directory needs admin, as the API's does; an agent-bound key's "My agent" is its own agent,
whose tasks and inbox it may read. Reading an inbox here is a peek: nothing counts as delivered, since
the agent has not read it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import get_args

from starlette.responses import Response

from engramdb import limits
from engramdb.schemas.agents import TERMINAL_STATES, InboxFilters, TaskCancel, TaskEventFilters, TaskFilters, TaskState
from engramdb.schemas.directory import Agent, AgentFilters
from engramdb.services.agents import history, mailboxes, tasks
from engramdb.services.tenancy import directory
from engramdb.services.tenancy.directory import AGENTS
from engramdb.web.view import Pages, View

pages = Pages()
SECTION = 10  # tasks of each kind on an agent's page; the task list behind "all" pages on
STATES: tuple[TaskState, ...] = get_args(TaskState)  # the state filter's choices, in lifecycle order


@pages.get("/agents")
async def agent_list(view: View) -> Response:
    if not view.is_admin and view.caller.agent_id is not None:
        return view.redirect(f"/ui/agents/{view.caller.agent_id}")  # an agent-bound key sees its own agent
    page = await directory.list_items(view.rt.db, view.caller, AGENTS, view.query(AgentFilters))
    return view.render("agents.html", page=page, next_href=view.next_href(page.next_cursor))


@pages.get("/agents/{agent_id:uuid}")
async def agent(view: View) -> Response:
    """The agent (its record for admin), the tasks assigned to it and those it holds, and its inbox, newest
    first, filtered and paged as the API's inbox is."""
    agent_id = view.path_id("agent_id")
    db, caller = view.rt.db, view.caller
    filters = view.query(InboxFilters)
    inbox = await mailboxes.inbox(db, caller, agent_id, filters, peek=True)  # 404 unless the key may see it
    record: Agent | None = await directory.get(db, caller, AGENTS, agent_id) if view.is_admin else None
    assigned = await tasks.list_tasks(db, caller, TaskFilters(assigned_to=agent_id, limit=SECTION))
    claimed = await tasks.list_tasks(db, caller, TaskFilters(claimed_by=agent_id, limit=SECTION))
    return view.render(
        "agent.html",
        agent_id=agent_id,
        record=record,
        assigned=assigned,
        claimed=claimed,
        inbox=inbox,
        filters=filters,
        names=await _agent_names(view),
        now=datetime.now(UTC),
        terminal=TERMINAL_STATES,
        next_href=view.next_href(inbox.next_cursor),
    )


@pages.get("/tasks")
async def task_list(view: View) -> Response:
    filters = view.query(TaskFilters)
    page = await tasks.list_tasks(view.rt.db, view.caller, filters)
    return view.render(
        "tasks.html",
        page=page,
        filters=filters,
        states=STATES,
        names=await _agent_names(view),
        now=datetime.now(UTC),
        terminal=TERMINAL_STATES,
        next_href=view.next_href(page.next_cursor),
    )


@pages.get("/tasks/{task_id:uuid}")
async def task(view: View) -> Response:
    task_id = view.path_id("task_id")
    db, caller = view.rt.db, view.caller
    found = await tasks.get(db, caller, task_id)
    events = await history.list_events(db, caller, task_id, view.query(TaskEventFilters))
    return view.render(
        "task.html",
        task=found,
        events=events,
        names=await _agent_names(view),
        now=datetime.now(UTC),
        terminal=TERMINAL_STATES,
        next_href=view.next_href(events.next_cursor),
    )


@pages.post("/tasks/{task_id:uuid}/cancel")
async def cancel_task(view: View) -> Response:
    task_id = view.path_id("task_id")
    body = TaskCancel.model_validate({"reason": view.field("reason").strip() or None})
    await tasks.cancel(view.rt, view.caller, task_id, body)
    return view.redirect(f"/ui/tasks/{task_id}", notice="canceled")


async def _agent_names(view: View) -> dict[uuid.UUID, str]:
    """Agents' names by id, for an admin (who may read the directory; one page of the newest agents);
    other keys see ids."""
    if not view.is_admin:
        return {}
    page = await directory.list_items(view.rt.db, view.caller, AGENTS, AgentFilters(limit=limits.MAX_PAGE_SIZE))
    return {a.id: a.name for a in page.data}

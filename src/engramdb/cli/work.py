"""CLI commands over agents at work, through the SDK (local or ``--url``): ``engramdb tasks …`` (create,
list, show with its history, claim, complete, fail, cancel) and ``engramdb inbox …`` (list, send, ack)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from engramdb.cli.connect import KeyOpt, OrgOpt, Target, UrlOpt, listed, run
from engramdb.cli.output import JsonOpt, LimitOpt, emit, json_object, out, row, short, when
from engramdb.cli.output import table as new_table
from engramdb.sdk import AsyncClient

tasks_app = typer.Typer(
    help="Tasks on queues: create, list, show, claim, complete, fail, cancel.", no_args_is_help=True
)
inbox_app = typer.Typer(help="Agents' mailboxes: list an inbox, send, acknowledge.", no_args_is_help=True)
APPS = {"tasks": tasks_app, "inbox": inbox_app}
QueueOpt = Annotated[str | None, typer.Option("--queue", help="The queue's name.")]
AgentArg = Annotated[str, typer.Argument(help="The agent's id.")]


@tasks_app.command("create")
def tasks_create(
    title: Annotated[str, typer.Argument(help="What to do.")],
    queue: Annotated[str, typer.Option("--queue", help="The queue's name.")] = "default",
    priority: Annotated[int, typer.Option(help="Higher is claimed first.")] = 0,
    capability: Annotated[list[str] | None, typer.Option("--capability", help="Required (repeatable).")] = None,
    depends_on: Annotated[list[str] | None, typer.Option("--depends-on", help="A task to wait for.")] = None,
    assign: Annotated[str | None, typer.Option("--assign", help="Only this agent may claim it.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Create a task."""
    fields: dict[str, Any] = {"title": title, "queue": queue, "priority": priority}
    fields.update(required_capabilities=capability or [], depends_on=depends_on or [], assigned_to=assign)
    task = run(Target(url, api_key, org), lambda c: c.tasks.create(**fields))
    out.print_json(task.model_dump_json())


@tasks_app.command("list")
def tasks_list(
    queue: QueueOpt = None,
    state: Annotated[str | None, typer.Option(help="submitted, working, input-required, completed …")] = None,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List tasks, newest first."""
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.tasks.list(queue=queue, state=state, limit=page))
    table = new_table(f"{len(found)} tasks", "id", "queue", "state", "prio", "title", "claimed by", "created")
    for t in found:
        claimed = str(t.claimed_by or "")
        row(table, str(t.id), t.queue, t.state, str(t.priority), short(t.title, 40), claimed, when(t.created_at))
    emit(found, as_json, table)


@tasks_app.command("show")
def tasks_show(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """A task and its history (every state change)."""

    async def work(c: AsyncClient) -> dict[str, Any]:
        task = await c.tasks.get(task_id)
        history = await c.tasks.history(task_id).to_list()
        return {"task": task.model_dump(mode="json"), "history": [e.model_dump(mode="json") for e in history]}

    out.print_json(json.dumps(run(Target(url, api_key, org), work)))


@tasks_app.command("claim")
def tasks_claim(
    agent: AgentArg,
    queue: QueueOpt = None,
    lease_s: Annotated[int, typer.Option("--lease", help="Seconds the claim lasts.")] = 60,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Claim the next eligible task for an agent (prints null when none is eligible)."""
    task = run(Target(url, api_key, org), lambda c: c.tasks.claim(agent_id=agent, queue=queue, lease_s=lease_s))
    out.print_json("null" if task is None else task.model_dump_json())


@tasks_app.command("complete")
def tasks_complete(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    lease_id: Annotated[str, typer.Option("--lease-id", help="The lease the claim returned.")],
    result: Annotated[str | None, typer.Option("--result", help="The result, a JSON object.")] = None,
    remember: Annotated[bool, typer.Option(help="Also keep the result as an episodic memory.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Complete a claimed task."""
    body = {"lease_id": lease_id, "result": json_object(result), "remember": remember}
    task = run(Target(url, api_key, org), lambda c: c.tasks.complete(task_id, **body))
    out.print_json(task.model_dump_json())


@tasks_app.command("fail")
def tasks_fail(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    lease_id: Annotated[str, typer.Option("--lease-id", help="The lease the claim returned.")],
    error: Annotated[str, typer.Option("--error", help="What went wrong.")],
    retry: Annotated[bool, typer.Option(help="Return it to the queue if attempts remain.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Fail a claimed task."""
    body = {"lease_id": lease_id, "error": error, "retry": retry}
    task = run(Target(url, api_key, org), lambda c: c.tasks.fail(task_id, **body))
    out.print_json(task.model_dump_json())


@tasks_app.command("cancel")
def tasks_cancel(
    task_id: Annotated[str, typer.Argument(help="The task's id.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept in its history).")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Cancel a task."""
    task = run(Target(url, api_key, org), lambda c: c.tasks.cancel(task_id, reason=reason))
    out.print_json(task.model_dump_json())


@inbox_app.command("list")
def inbox_list(
    agent: AgentArg,
    unacked: Annotated[bool, typer.Option("--unacked", help="Only messages not yet acknowledged.")] = False,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """An agent's inbox, oldest first."""
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.inbox.list(agent, unacked=unacked, limit=page))
    table = new_table(f"{len(found)} messages", "id", "from", "type", "payload", "acked", "sent")
    for m in found:
        payload = short(json.dumps(m.payload), 50)
        row(table, str(m.id), str(m.from_agent_id or ""), m.message_type, payload, when(m.acked_at), when(m.created_at))
    emit(found, as_json, table)


@inbox_app.command("send")
def inbox_send(
    payload: Annotated[str, typer.Argument(help="The message, a JSON object.")],
    to: Annotated[str | None, typer.Option("--to", help="An agent's id.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="A team's id: every agent of the team.")] = None,
    broadcast: Annotated[bool, typer.Option(help="Every agent of the organization.")] = False,
    sender: Annotated[str | None, typer.Option("--from", help="The sending agent's id.")] = None,
    message_type: Annotated[str, typer.Option("--type", help="A label.")] = "message",
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Send a message to an agent, a team or everyone."""
    body: dict[str, Any] = {"to_agent_id": to, "to_team_id": team, "broadcast": broadcast, "from_agent_id": sender}
    body.update(message_type=message_type, payload=json_object(payload))
    message = run(Target(url, api_key, org), lambda c: c.inbox.send(**body))
    out.print_json(message.model_dump_json())


@inbox_app.command("ack")
def inbox_ack(
    agent: AgentArg,
    message_ids: Annotated[list[str], typer.Argument(help="The messages to acknowledge.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Acknowledge messages of an agent's inbox."""
    acked = run(Target(url, api_key, org), lambda c: c.inbox.ack(agent, list(message_ids)))
    out.print(f"{acked} acknowledged")

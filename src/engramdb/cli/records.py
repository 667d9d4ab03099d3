"""CLI commands over the records of one organization, through the SDK (local or ``--url``): users,
agents, sessions, search, memories, facts, the predicate catalogue, the entity graph and jobs. Tables by
default, ``--json`` for scripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from engramdb.cli.connect import KeyOpt, OrgOpt, Target, UrlOpt, listed, run
from engramdb.cli.output import JsonOpt, LimitOpt, emit, out, row, short, when
from engramdb.cli.output import table as new_table
from engramdb.sdk import AsyncClient

UserOpt = Annotated[str | None, typer.Option("--user", help="The user's external id (your app's id for them).")]

users_app = typer.Typer(help="Users of the organization.", no_args_is_help=True)
agents_app = typer.Typer(help="Agents of the organization.", no_args_is_help=True)
sessions_app = typer.Typer(help="Sessions (conversations) and their messages.", no_args_is_help=True)
memories_app = typer.Typer(help="Memories: list, show, history, accesses, add, delete.", no_args_is_help=True)
facts_app = typer.Typer(help="Bi-temporal facts: list (as of a time), add, retract.", no_args_is_help=True)
predicates_app = typer.Typer(
    help="The predicate catalogue: which predicates hold one object at a time (list, set, delete).",
    no_args_is_help=True,
)
graph_app = typer.Typer(help="The entity graph: entities, neighbours, paths.", no_args_is_help=True)
jobs_app = typer.Typer(help="Background jobs: list, show, retry.", no_args_is_help=True)
APPS = {
    "users": users_app,
    "agents": agents_app,
    "sessions": sessions_app,
    "memories": memories_app,
    "facts": facts_app,
    "predicates": predicates_app,
    "graph": graph_app,
    "jobs": jobs_app,
}


async def _user_id(client: AsyncClient, external: str | None) -> str | None:
    return None if external is None else str((await client.users.get_by_external_id(external)).id)


# users / agents --------------------------------------------------------------------------------------


@users_app.command("list")
def users_list(
    limit: LimitOpt = 100, as_json: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """List users."""
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.users.list(limit=page))
    table = new_table(f"{len(found)} users", "id", "external id", "name", "created")
    for u in found:
        row(table, str(u.id), u.external_id or "", u.display_name or "", when(u.created_at))
    emit(found, as_json, table)


@users_app.command("create")
def users_create(
    external_id: Annotated[str, typer.Argument(help="Your app's id for the user.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Create a user."""
    user = run(Target(url, api_key, org), lambda c: c.users.create(external_id=external_id, display_name=name))
    out.print_json(user.model_dump_json())


@users_app.command("delete")
def users_delete(
    external_id: Annotated[str, typer.Argument(help="The user's external id.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Delete a user and everything that is theirs."""

    async def work(c: AsyncClient) -> None:
        await c.users.delete((await c.users.get_by_external_id(external_id)).id)

    run(Target(url, api_key, org), work)
    out.print(f"deleted user {external_id}")


@agents_app.command("list")
def agents_list(
    limit: LimitOpt = 100, as_json: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """List agents."""
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.agents.list(limit=page))
    table = new_table(f"{len(found)} agents", "id", "name", "created")
    for a in found:
        row(table, str(a.id), a.name, when(a.created_at))
    emit(found, as_json, table)


@agents_app.command("create")
def agents_create(
    name: Annotated[str, typer.Argument(help="The agent's name.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Create an agent."""
    agent = run(Target(url, api_key, org), lambda c: c.agents.create(name=name))
    out.print_json(agent.model_dump_json())


# sessions --------------------------------------------------------------------------------------------


@sessions_app.command("list")
def sessions_list(
    user: UserOpt = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List sessions, newest first."""
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.sessions.list(external_user_id=user, limit=page))
    table = new_table(f"{len(found)} sessions", "id", "title", "status", "messages", "created")
    for s in found:
        row(table, str(s.id), s.title or "", s.status, str(s.message_count), when(s.created_at))
    emit(found, as_json, table)


@sessions_app.command("show")
def sessions_show(
    session_id: Annotated[str, typer.Argument(help="The session's id.")],
    limit: LimitOpt = 200,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Print a session's messages in order."""
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.sessions.messages.list(session_id, limit=page))
    table = new_table(f"session {session_id}", "when", "role", "content")
    for m in found:
        row(table, when(m.occurred_at), m.name or m.role, m.content)
    emit(found, as_json, table)


# search ----------------------------------------------------------------------------------------------


def search(
    query: Annotated[str, typer.Argument(help="What to look for, in plain words.")],
    user: UserOpt = None,
    types: Annotated[
        list[str] | None,
        typer.Option("--type", help="messages, memories, facts, entities, chunks, documents, contexts (repeatable)."),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=100, help="How many results.")] = 10,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Hybrid search (vector + keyword, fused) over conversations, memories, facts and documents."""
    fields: dict[str, Any] = {"query": query, "top_k": top_k, "external_user_id": user}
    if types:
        fields["types"] = types
    found = run(Target(url, api_key, org), lambda c: c.search(**{k: v for k, v in fields.items() if v is not None}))
    table = new_table(
        f"{len(found.results)} results for '{short(query, 60)}'", "#", "type", "score", "content", "where"
    )
    for rank, hit in enumerate(found.results, start=1):
        where = hit.citation or (when(hit.occurred_at) if hit.occurred_at else "")
        row(table, str(rank), hit.type, f"{hit.score:.3f}", short(hit.content, 100), where or "")
    emit(found, as_json, table)


# memories --------------------------------------------------------------------------------------------


@memories_app.command("list")
def memories_list(
    user: UserOpt = None,
    state: Annotated[str | None, typer.Option(help="active, archived, paused or deleted.")] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List memories, newest first."""
    found = listed(
        Target(url, api_key, org),
        limit,
        lambda c, page: c.memories.list(external_user_id=user, state=state, limit=page),
    )
    table = new_table(f"{len(found)} memories", "id", "type", "content", "created")
    for m in found:
        row(table, str(m.id), m.type, short(m.content, 90), when(m.created_at))
    emit(found, as_json, table)


@memories_app.command("add")
def memories_add(
    content: Annotated[str, typer.Argument(help="What to remember, as a sentence.")],
    user: UserOpt = None,
    memory_type: Annotated[
        str | None, typer.Option("--type", help="fact, preference, task, procedural or episodic.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Store a memory directly (extraction stores the ones it finds in conversations)."""
    fields = {"content": content, "external_user_id": user, "type": memory_type, "tags": tag}
    memory = run(Target(url, api_key, org), lambda c: c.memories.create(**{k: v for k, v in fields.items() if v}))
    out.print(f"stored memory {memory.id}")


@memories_app.command("show")
def memories_show(
    memory_id: Annotated[str, typer.Argument(help="The memory's id.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Print one memory with everything Engram keeps about it."""
    memory = run(Target(url, api_key, org), lambda c: c.memories.get(memory_id))
    out.print_json(memory.model_dump_json())


@memories_app.command("history")
def memories_history(
    memory_id: Annotated[str, typer.Argument(help="The memory's id.")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Every change of a memory, oldest first: what it said before and who changed it."""
    found = run(Target(url, api_key, org), lambda c: c.memories.history(memory_id).to_list())
    table = new_table(f"history of {memory_id}", "when", "action", "actor", "old", "new")
    for h in found:
        old = json.dumps(h.old_values) if h.old_values else ""
        new = json.dumps(h.new_values) if h.new_values else ""
        row(table, when(h.changed_at), h.action, h.actor or "", short(old, 60), short(new, 60))
    emit(found, as_json, table)


@memories_app.command("accesses")
def memories_accesses(
    memory_id: Annotated[str, typer.Argument(help="The memory's id.")],
    access_type: Annotated[str | None, typer.Option("--type", help="search, read or context.")] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Every time a search, read or context returned the memory, newest first: with which key and score."""
    found = listed(
        Target(url, api_key, org),
        limit,
        lambda c, page: c.memories.accesses(memory_id, access_type=access_type, limit=page),
    )
    table = new_table(f"{len(found)} accesses of {memory_id}", "when", "type", "key", "request", "score")
    for a in found:
        score = "" if a.score is None else f"{a.score:.3f}"
        row(table, when(a.accessed_at), a.access_type, str(a.key_id or ""), a.request_id or "", score)
    emit(found, as_json, table)


@memories_app.command("delete")
def memories_delete(
    memory_id: Annotated[str, typer.Argument(help="The memory's id.")],
    hard: Annotated[bool, typer.Option("--hard", help="Erase it for good instead of marking it deleted.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Delete a memory (kept in history as deleted unless --hard)."""
    run(Target(url, api_key, org), lambda c: c.memories.delete(memory_id, hard=hard))
    out.print(f"deleted memory {memory_id}")


# facts -----------------------------------------------------------------------------------------------


@facts_app.command("list")
def facts_list(
    subject: Annotated[str | None, typer.Option(help="Only facts about this subject.")] = None,
    predicate: Annotated[str | None, typer.Option(help="Only this predicate (lives_in, works_at …).")] = None,
    valid_at: Annotated[datetime | None, typer.Option(help="What was true at this time (default: now).")] = None,
    known_at: Annotated[datetime | None, typer.Option(help="What Engram believed at this time.")] = None,
    history: Annotated[bool, typer.Option("--history", help="Include closed and superseded versions.")] = False,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List the facts true now (or at --valid-at, as believed at --known-at); --history for every version."""
    if valid_at is None and not history:
        valid_at = datetime.now(UTC)

    found = listed(
        Target(url, api_key, org),
        limit,
        lambda c, page: c.facts.list(
            subject=subject,
            predicate=predicate,
            valid_at=valid_at,
            known_at=known_at,
            include_history=history or None,
            limit=page,
        ),
    )
    table = new_table(f"{len(found)} facts", "subject", "predicate", "object", "valid from", "valid until", "id")
    for f in found:
        row(table, f.subject, f.predicate, f.object, when(f.valid_from), when(f.valid_until), str(f.id))
    emit(found, as_json, table)


@facts_app.command("add")
def facts_add(
    subject: Annotated[str, typer.Argument()],
    predicate: Annotated[str, typer.Argument()],
    obj: Annotated[str, typer.Argument(metavar="OBJECT")],
    user: UserOpt = None,
    single: Annotated[
        bool | None,
        typer.Option(
            "--single/--many",
            help="One object at a time (closes the current one), or many; default: the predicate catalogue's.",
        ),
    ] = None,
    entity: Annotated[bool, typer.Option("--entity", help="The object is an entity too (a graph edge).")] = False,
    valid_from: Annotated[datetime | None, typer.Option(help="When it became true.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Record a fact (consolidated: a duplicate adds weight, a contradiction closes the old one)."""
    fields: dict[str, Any] = {"subject": subject, "predicate": predicate, "object": obj, "object_is_entity": entity}
    extra = {"single_valued": single, "external_user_id": user, "valid_from": valid_from}
    fields |= {k: v for k, v in extra.items() if v is not None}
    result = run(Target(url, api_key, org), lambda c: c.facts.create(**fields))
    out.print_json(result.model_dump_json())


@facts_app.command("retract")
def facts_retract(
    fact_id: Annotated[str, typer.Argument()], url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """Retract a fact (it stays in the history)."""
    run(Target(url, api_key, org), lambda c: c.facts.retract(fact_id))
    out.print(f"retracted fact {fact_id}")


# predicates ------------------------------------------------------------------------------------------


@predicates_app.command("list")
def predicates_list(
    cardinality: Annotated[str | None, typer.Option(help="Only these: one or many.")] = None,
    source: Annotated[str | None, typer.Option(help="Only these: builtin or organization.")] = None,
    limit: LimitOpt = 500,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List the predicate catalogue: built-in predicates and the organization's own, by name."""

    found = listed(
        Target(url, api_key, org),
        limit,
        lambda c, page: c.predicates.list(cardinality=cardinality, source=source, limit=page),
    )
    table = new_table(f"{len(found)} predicates", "name", "cardinality", "source", "description")
    for p in found:
        row(table, p.name, p.cardinality, p.source, short(p.description))
    emit(found, as_json, table)


@predicates_app.command("set")
def predicates_set(
    name: Annotated[str, typer.Argument(help="The predicate (lives_in, works_at …).")],
    cardinality: Annotated[str, typer.Argument(metavar="one|many", help="one: a new fact closes the current one.")],
    description: Annotated[str | None, typer.Option(help="What the predicate means.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Define a predicate, or override a built-in one's cardinality (admin)."""
    fields: dict[str, Any] = {"cardinality": cardinality}
    if description is not None:
        fields["description"] = description
    result = run(Target(url, api_key, org), lambda c: c.predicates.set(name, **fields))
    out.print_json(result.model_dump_json())


@predicates_app.command("delete")
def predicates_delete(
    name: Annotated[str, typer.Argument()], url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """Remove the organization's definition of a predicate (a built-in one has its default again)."""
    run(Target(url, api_key, org), lambda c: c.predicates.delete(name))
    out.print(f"deleted the organization's definition of {name}")


# graph -----------------------------------------------------------------------------------------------


@graph_app.command("entities")
def graph_entities(
    q: Annotated[str | None, typer.Argument(help="Name (or part of one) to look for.")] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List entities (people, places, organisations …)."""
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.entities.list(q=q, limit=page))
    table = new_table(f"{len(found)} entities", "id", "name", "type", "aliases")
    for e in found:
        row(table, str(e.id), e.name, e.type, ", ".join(e.aliases))
    emit(found, as_json, table)


async def _entity(c: AsyncClient, ref: str) -> Any:
    try:
        return await c.entities.get(str(__import__("uuid").UUID(ref)))
    except ValueError:
        pass
    found = await c.entities.list(q=ref, limit=5).to_list(5)
    exact = [e for e in found if e.name.casefold() == ref.casefold()] or found
    if not exact:
        raise typer.BadParameter(f"no entity named '{ref}' (see `engramdb graph entities`)")
    return exact[0]


@graph_app.command("neighbors")
def graph_neighbors(
    entity: Annotated[str, typer.Argument(help="Entity name or id.")],
    depth: Annotated[int, typer.Option(min=1, max=4, help="Hops to walk.")] = 1,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """What an entity is linked to, up to --depth hops, with the facts that link them."""

    async def work(c: AsyncClient) -> Any:
        return await c.entities.neighbors((await _entity(c, entity)).id, depth=depth)

    found = run(Target(url, api_key, org), work)
    names = {str(e.id): e.name for e in found.entities}
    table = new_table(f"around {names.get(str(found.entity_id), entity)}", "from", "predicate", "to", "fact")
    for edge in found.edges:
        row(
            table,
            names.get(str(edge.source_id), ""),
            edge.predicate,
            names.get(str(edge.target_id), ""),
            str(edge.fact_id),
        )
    emit(found, as_json, table)


@graph_app.command("paths")
def graph_paths(
    source: Annotated[str, typer.Argument(help="Entity name or id.")],
    target: Annotated[str, typer.Argument(help="Entity name or id.")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """The shortest paths between two entities."""

    async def work(c: AsyncClient) -> Any:
        return await c.entities.paths((await _entity(c, source)).id, (await _entity(c, target)).id)

    found = run(Target(url, api_key, org), work)
    if as_json:
        emit(found, True)
        return
    for path in found.paths:
        steps = [path.entities[0].name]
        for edge, entity in zip(path.edges, path.entities[1:], strict=False):
            steps.append(f"-[{edge.predicate}]- {entity.name}")
        out.print(" ".join(steps), markup=False, highlight=False)
    if not found.paths:
        out.print("no path")


# jobs ------------------------------------------------------------------------------------------------


@jobs_app.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded or failed.")] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List background jobs, newest first."""
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.jobs.list(status=status, limit=page))
    table = new_table(f"{len(found)} jobs", "id", "kind", "status", "attempts", "created", "error")
    for j in found:
        row(table, str(j.id), j.kind, j.status, str(j.attempts), when(j.created_at), short(j.error, 60))
    emit(found, as_json, table)


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument()], url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """Print one job: status, attempts, result, error, tokens."""
    job = run(Target(url, api_key, org), lambda c: c.jobs.get(job_id))
    out.print_json(job.model_dump_json())


@jobs_app.command("retry")
def jobs_retry(
    job_id: Annotated[str, typer.Argument()], url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """Queue a failed job again."""
    job = run(Target(url, api_key, org), lambda c: c.jobs.retry(job_id))
    out.print(f"queued again as {job.id}")

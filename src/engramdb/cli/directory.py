"""CLI commands over an organization's teams and apps, through the SDK (local or ``--url`` with an admin
key): list, create, show, update, delete. A command takes a team or app by its id or by its name (names
are unique in an organization)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from engramdb.cli.connect import KeyOpt, OrgOpt, Target, UrlOpt, listed, run
from engramdb.cli.output import JsonOpt, LimitOpt, emit, json_object, out, row, short, when
from engramdb.cli.output import table as new_table
from engramdb.errors import NotFound
from engramdb.sdk import AsyncClient

teams_app = typer.Typer(help="Teams of the organization: list, create, show, update, delete.", no_args_is_help=True)
apps_app = typer.Typer(
    help="Apps (client applications or projects) of the organization: list, create, show, update, delete.",
    no_args_is_help=True,
)
APPS = {"teams": teams_app, "apps": apps_app}

TeamArg = Annotated[str, typer.Argument(help="The team's id or name.")]
AppArg = Annotated[str, typer.Argument(help="The app's id or name.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="A new name.")]
DescriptionOpt = Annotated[str | None, typer.Option("--description", help="A note for people ('' clears it).")]
MetadataOpt = Annotated[str | None, typer.Option("--metadata", help="A JSON object (replaces the whole metadata).")]
IsolationOpt = Annotated[
    str | None,
    typer.Option(
        "--isolation",
        help="strict (no access grant reaches in or out), shared (grants apply) or federated (shared, and "
        "contributes to federated insights). See `engramdb grants`.",
    ),
]


async def _find(c: AsyncClient, noun: str, ref: str) -> Any:
    """The team or app ``ref`` names: its id, or else its exact name."""
    resource = c.teams if noun == "team" else c.apps
    try:
        item_id = uuid.UUID(ref)
    except ValueError:
        async for item in resource.list(limit=200):
            if item.name == ref:
                return item
        raise NotFound(f"no {noun} named '{ref}' (see `engramdb {noun}s list`)") from None
    return await resource.get(item_id)


def _changes(name: str | None, description: str | None, metadata: str | None, **more: Any) -> dict[str, Any]:
    """The fields an update sends: only those given; an empty description clears it."""
    fields: dict[str, Any] = {k: v for k, v in {"name": name, **more}.items() if v is not None}
    if description is not None:
        fields["description"] = description or None
    if metadata is not None:
        fields["metadata"] = json_object(metadata)
    if not fields:
        raise typer.BadParameter("nothing to change: pass --name, --description, --metadata or another option")
    return fields


def _show(item: Any) -> None:
    out.print_json(item.model_dump_json())


# teams -----------------------------------------------------------------------------------------------


@teams_app.command("list")
def teams_list(
    limit: LimitOpt = 100, as_json: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """List teams, newest first."""
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.teams.list(limit=page))
    table = new_table(f"{len(found)} teams", "id", "name", "description", "created")
    for t in found:
        row(table, str(t.id), t.name, short(t.description, 60), when(t.created_at))
    emit(found, as_json, table)


@teams_app.command("create")
def teams_create(
    name: Annotated[str, typer.Argument(help="The team's name (unique in the organization).")],
    description: Annotated[str | None, typer.Option("--description", help="A note for people.")] = None,
    metadata: MetadataOpt = None,
    isolation: IsolationOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Create a team and print it."""
    fields = {"name": name, "description": description, "metadata": json_object(metadata)}
    if isolation is not None:
        fields["isolation"] = isolation
    _show(run(Target(url, api_key, org), lambda c: c.teams.create(**fields)))


@teams_app.command("show")
def teams_show(team: TeamArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Print one team."""
    _show(run(Target(url, api_key, org), lambda c: _find(c, "team", team)))


@teams_app.command("update")
def teams_update(
    team: TeamArg,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    metadata: MetadataOpt = None,
    isolation: IsolationOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Rename a team or change its description, metadata or isolation, and print it."""
    fields = _changes(name, description, metadata, isolation=isolation)

    async def work(c: AsyncClient) -> Any:
        return await c.teams.update((await _find(c, "team", team)).id, **fields)

    _show(run(Target(url, api_key, org), work))


@teams_app.command("delete")
def teams_delete(team: TeamArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Delete a team and the API keys bound to it; its users, agents, sessions and memories stay, in no team."""

    async def work(c: AsyncClient) -> Any:
        found = await _find(c, "team", team)
        await c.teams.delete(found.id)
        return found

    gone = run(Target(url, api_key, org), work)
    out.print(f"deleted team {gone.name} ({gone.id})", markup=False, highlight=False)


# apps ------------------------------------------------------------------------------------------------


@apps_app.command("list")
def apps_list(
    limit: LimitOpt = 100, as_json: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """List apps, newest first."""
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.apps.list(limit=page))
    table = new_table(f"{len(found)} apps", "id", "name", "active", "description", "created")
    for a in found:
        row(table, str(a.id), a.name, "yes" if a.is_active else "no", short(a.description, 60), when(a.created_at))
    emit(found, as_json, table)


@apps_app.command("create")
def apps_create(
    name: Annotated[str, typer.Argument(help="The app's name (unique in the organization).")],
    description: Annotated[str | None, typer.Option("--description", help="A note for people.")] = None,
    inactive: Annotated[
        bool, typer.Option("--inactive", help="Create it inactive (nothing new filed under it).")
    ] = False,
    metadata: MetadataOpt = None,
    isolation: IsolationOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Create an app (a client application or project that sessions and memories can be scoped to)."""
    fields = {"name": name, "description": description, "is_active": not inactive, "metadata": json_object(metadata)}
    if isolation is not None:
        fields["isolation"] = isolation
    _show(run(Target(url, api_key, org), lambda c: c.apps.create(**fields)))


@apps_app.command("show")
def apps_show(app: AppArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Print one app."""
    _show(run(Target(url, api_key, org), lambda c: _find(c, "app", app)))


@apps_app.command("update")
def apps_update(
    app: AppArg,
    name: NameOpt = None,
    description: DescriptionOpt = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--inactive", help="An inactive app takes no new data; what it holds stays readable."),
    ] = None,
    metadata: MetadataOpt = None,
    isolation: IsolationOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Rename an app, (de)activate it or change its description, metadata or isolation, and print it."""
    fields = _changes(name, description, metadata, is_active=active, isolation=isolation)

    async def work(c: AsyncClient) -> Any:
        return await c.apps.update((await _find(c, "app", app)).id, **fields)

    _show(run(Target(url, api_key, org), work))


@apps_app.command("delete")
def apps_delete(app: AppArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Delete an app: what was filed under it stays, no longer scoped to an app."""

    async def work(c: AsyncClient) -> Any:
        found = await _find(c, "app", app)
        await c.apps.delete(found.id)
        return found

    gone = run(Target(url, api_key, org), work)
    out.print(f"deleted app {gone.name} ({gone.id})", markup=False, highlight=False)

"""``engramdb grants …``: access grants (who else may read or write a slice of the organization's data),
through the SDK (local, or ``--url`` with an admin key). Teams, apps and agents may be named by their
names, users by your app's external id; anything else by id."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from engramdb.cli.connect import KeyOpt, OrgOpt, Target, UrlOpt, listed, run
from engramdb.cli.output import JsonOpt, LimitOpt, emit, out, row, short, when
from engramdb.cli.output import table as new_table
from engramdb.errors import NotFound
from engramdb.schemas.sharing import Grant
from engramdb.sdk import AsyncClient

grants_app = typer.Typer(
    help="Access grants: let a team, user, agent or key read or write some of the organization's data.",
    no_args_is_help=True,
)
APPS = {"grants": grants_app}

GrantArg = Annotated[str, typer.Argument(help="The grant's id.")]
ExpiresOpt = Annotated[
    str | None, typer.Option("--expires", help="When it stops applying (ISO 8601, e.g. 2027-01-31T00:00:00Z).")
]
DescriptionOpt = Annotated[str | None, typer.Option("--description", help="A note for people.")]
RESOURCES = ("memories", "sessions", "documents", "repositories", "facts")


async def _by_name(c: AsyncClient, noun: str, ref: str) -> uuid.UUID:
    """A team, app or agent by its id or its exact name; a user by id or external id."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        pass
    if noun == "user":
        return (await c.users.get_by_external_id(ref)).id
    resource: Any = {"team": c.teams, "app": c.apps, "agent": c.agents}[noun]
    async for item in resource.list(limit=200):
        if item.name == ref:
            found: uuid.UUID = item.id
            return found
    raise NotFound(f"no {noun} named '{ref}' (see `engramdb {noun}s list`)")


def _grantee(grant: Grant) -> str:
    for kind in ("team", "user", "agent", "key"):
        value = getattr(grant, f"grantee_{kind}_id")
        if value is not None:
            return f"{kind} {value}"
    return ""


def _narrowing(grant: Grant) -> str:
    parts = [
        f"{label} {value}"
        for label, value in (
            ("owner", grant.owner_user_id),
            ("app", grant.app_id),
            ("repository", grant.repository_id),
            ("session", grant.session_id),
            ("type", grant.memory_type),
        )
        if value is not None
    ]
    parts += [f"tags {','.join(grant.tags)}"] if grant.tags else []
    parts += [f"categories {','.join(grant.categories)}"] if grant.categories else []
    return "; ".join(parts) or "all"


def _show(grant: Grant) -> None:
    out.print_json(grant.model_dump_json())


@grants_app.command("list")
def grants_list(
    resource: Annotated[
        str | None, typer.Option("--resource", help=f"Only grants on one of {', '.join(RESOURCES)}.")
    ] = None,
    include_inactive: Annotated[bool, typer.Option("--all", help="Also revoked and expired grants.")] = False,
    limit: LimitOpt = 100,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List grants in force, newest first."""
    filters: dict[str, Any] = {"resource": resource, "include_inactive": include_inactive}
    fields = {k: v for k, v in filters.items() if v is not None}
    found = listed(Target(url, api_key, org), limit, lambda c, page: c.grants.list(**fields, limit=page))
    table = new_table(
        f"{len(found)} grants", "id", "grantee", "permission", "resource", "narrowed to", "status", "expires"
    )
    for g in found:
        row(
            table,
            str(g.id),
            _grantee(g),
            g.permission,
            g.resource,
            short(_narrowing(g), 80),
            g.status,
            when(g.expires_at) or "never",
        )
    emit(found, as_json, table)


@grants_app.command("create")
def grants_create(
    resource: Annotated[str, typer.Argument(help=f"What it shares: one of {', '.join(RESOURCES)}.")],
    team: Annotated[str | None, typer.Option("--team", help="Grant to this team (id or name).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Grant to this user (id or external id).")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Grant to this agent (id or name).")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Grant to this API key (id).")] = None,
    write: Annotated[bool, typer.Option("--write", help="Write as well as read.")] = False,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this user's rows (id or external id).")] = None,
    app: Annotated[str | None, typer.Option("--app", help="Only rows of this app (id or name).")] = None,
    repository: Annotated[str | None, typer.Option("--repository", help="Only this repository (id).")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Only this session (id).")] = None,
    memory_type: Annotated[str | None, typer.Option("--type", help="Only memories of this type.")] = None,
    tags: Annotated[
        list[str] | None, typer.Option("--tag", help="Only rows with this tag (repeat: any of them).")
    ] = None,
    categories: Annotated[
        list[str] | None, typer.Option("--category", help="Only memories in this category (repeat: any).")
    ] = None,
    expires: ExpiresOpt = None,
    description: DescriptionOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Make a grant and print it, e.g. `engramdb grants create memories --team support --owner alice --tag
    account` (team support reads alice's memories tagged account)."""
    grantees = {"team": team, "user": user, "agent": agent, "key": key}
    named = [k for k, v in grantees.items() if v is not None]
    if len(named) != 1:
        raise typer.BadParameter("name exactly one grantee: --team, --user, --agent or --key")

    async def work(c: AsyncClient) -> Grant:
        (kind,) = named
        ref = grantees[kind]
        assert ref is not None
        fields: dict[str, Any] = {
            "resource": resource,
            "permission": "write" if write else "read",
            f"grantee_{kind}_id": uuid.UUID(ref) if kind == "key" else await _by_name(c, kind, ref),
            "owner_user_id": await _by_name(c, "user", owner) if owner else None,
            "app_id": await _by_name(c, "app", app) if app else None,
            "repository_id": repository,
            "session_id": session,
            "memory_type": memory_type,
            "tags": tags or [],
            "categories": categories or [],
            "expires_at": expires,
            "description": description,
        }
        return await c.grants.create(**{k: v for k, v in fields.items() if v is not None})

    _show(run(Target(url, api_key, org), work))


@grants_app.command("show")
def grants_show(grant: GrantArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Print one grant (revoked and expired ones too)."""
    _show(run(Target(url, api_key, org), lambda c: c.grants.get(grant)))


@grants_app.command("update")
def grants_update(
    grant: GrantArg,
    expires: ExpiresOpt = None,
    never: Annotated[bool, typer.Option("--never", help="Make it never expire.")] = False,
    description: DescriptionOpt = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Change when a grant expires, or its description, and print it."""
    if expires is not None and never:
        raise typer.BadParameter("pass --expires or --never, not both")
    fields: dict[str, Any] = {"expires_at": None} if never else {}
    if expires is not None:
        fields["expires_at"] = expires
    if description is not None:
        fields["description"] = description or None
    if not fields:
        raise typer.BadParameter("nothing to change: pass --expires, --never or --description")
    _show(run(Target(url, api_key, org), lambda c: c.grants.update(grant, **fields)))


@grants_app.command("revoke")
def grants_revoke(grant: GrantArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Revoke a grant at once (it stays on record, revoked)."""
    gone = run(Target(url, api_key, org), lambda c: c.grants.revoke(grant))
    out.print(f"revoked grant {gone.id} ({gone.permission} on {gone.resource}, {_grantee(gone)})", markup=False)

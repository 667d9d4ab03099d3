"""CLI commands over federated insights, through the SDK (local or ``--url``): ``engramdb insights isolation
[LEVEL]`` (the organization's isolation level: federated joins), ``sessions``, ``open``, ``show``, ``join``,
``leave``, ``release``, ``results``, ``close``, and your own record: ``participations``, ``contributions``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from engramdb.cli.connect import KeyOpt, OrgOpt, Target, UrlOpt, listed, run
from engramdb.cli.output import JsonOpt, LimitOpt, emit, out, row, table, when
from engramdb.schemas.insights import Insight
from engramdb.sdk import AsyncClient

insights_app = typer.Typer(
    help="Federated insights: counts across organizations released under differential privacy.",
    no_args_is_help=True,
)
APPS = {"insights": insights_app}
IdArg = Annotated[str, typer.Argument(help="The session's id.")]


@insights_app.command("isolation")
def isolation(
    level: Annotated[str | None, typer.Argument(help="strict, shared or federated; none: show it.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Show or set the organization's isolation level (only a federated organization joins sessions)."""

    async def work(c: AsyncClient) -> Any:
        return await (c.organization.get() if level is None else c.organization.update(isolation=level))

    out.print(f"isolation: {run(Target(url, api_key, org), work).isolation}")


@insights_app.command("sessions")
def sessions_list(
    status: Annotated[str | None, typer.Option(help="open or closed.")] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Sessions the organization opened or is invited to, newest first."""
    found = listed(
        Target(url, api_key, org), limit, lambda c, page: c.insights.sessions.list(status=status, limit=page)
    )
    shown = table(f"{len(found)} sessions", "id", "topic", "query", "buckets", "ε/release", "role", "status")
    for s in found:
        row(shown, str(s.id), s.topic, s.query, str(len(s.buckets)), f"{s.epsilon:g}", s.role, s.status)
    emit(found, as_json, shown)


@insights_app.command("open")
def open_session(
    topic: Annotated[str, typer.Argument(help="What the session is about, for people.")],
    query: Annotated[
        str,
        typer.Option(help="memory_types, memory_categories, fact_predicates, entity_types or task_outcomes."),
    ],
    bucket: Annotated[list[str] | None, typer.Option("--bucket", help="A value to count (repeat).")] = None,
    bound: Annotated[int, typer.Option(help="Each participant's count per bucket is clamped to this.")] = 1,
    epsilon: Annotated[float, typer.Option(help="ε each release spends.")] = 1.0,
    min_participants: Annotated[int, typer.Option("--min-participants", help="Fewest to release.")] = 5,
    invite: Annotated[list[str] | None, typer.Option("--invite", help="An organization id to invite (repeat).")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Open a session and invite organizations to it; print it (with the noise each release will carry)."""
    fields: dict[str, Any] = {"topic": topic, "query": query, "bound": bound, "epsilon": epsilon}
    fields.update(min_participants=min_participants, invited_org_ids=invite or [])
    if bucket:
        fields["buckets"] = bucket
    made = run(Target(url, api_key, org), lambda c: c.insights.sessions.create(**fields))
    out.print_json(made.model_dump_json())


@insights_app.command("show")
def show(session_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Print one session, with how many participants joined."""
    out.print_json(run(Target(url, api_key, org), lambda c: c.insights.sessions.get(session_id)).model_dump_json())


@insights_app.command("join")
def join(
    session_id: IdArg,
    budget: Annotated[float, typer.Option("--budget", help="The total ε your data may be spent for.")] = 5.0,
    team: Annotated[str | None, typer.Option("--team", help="Join as this federated team.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Join a session you are invited to, with a privacy budget."""
    fields: dict[str, Any] = {"epsilon_budget": budget} | ({"team_id": team} if team else {})
    joined = run(Target(url, api_key, org), lambda c: c.insights.sessions.join(session_id, **fields))
    out.print(f"joined {session_id} as participation {joined.id} (budget ε={joined.epsilon_budget:g})")


@insights_app.command("leave")
def leave(session_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Leave a session: later releases leave your data out."""
    run(Target(url, api_key, org), lambda c: c.insights.sessions.leave(session_id))
    out.print(f"left {session_id}")


@insights_app.command("close")
def close(session_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Close a session you opened: no more joins or releases."""
    run(Target(url, api_key, org), lambda c: c.insights.sessions.close(session_id))
    out.print(f"closed {session_id}")


def _histogram(insight: Insight) -> Any:
    shown = table(
        f"{insight.topic}: {insight.participants} participants, {insight.mechanism}, ε={insight.epsilon:g}, "
        f"noise scale {insight.scale:g}",
        "bucket",
        "noisy count",
    )
    for b in insight.histogram:
        row(shown, b.bucket, str(b.count))
    return shown


@insights_app.command("release")
def release(
    session_id: IdArg, as_json: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """Release the session's histogram once, spending ε of each participant's budget."""
    insight = run(Target(url, api_key, org), lambda c: c.insights.sessions.release(session_id))
    emit(insight, as_json, _histogram(insight))


@insights_app.command("results")
def results(
    session_id: IdArg,
    limit: LimitOpt = 20,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """The session's released insights, newest first."""
    found = listed(
        Target(url, api_key, org), limit, lambda c, page: c.insights.sessions.insights(session_id, limit=page)
    )
    if as_json:
        emit(found, True)
        return
    for insight in found:
        out.print(_histogram(insight))
        out.print(f"released {when(insight.released_at)}")


@insights_app.command("participations")
def participations(
    status: Annotated[str | None, typer.Option(help="invited, joined or left.")] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Your participations and the budget each spent (your record: nobody else reads it)."""
    found = listed(
        Target(url, api_key, org), limit, lambda c, page: c.insights.participations.list(status=status, limit=page)
    )
    shown = table(
        f"{len(found)} participations", "id", "session", "topic", "team", "status", "ε spent", "of", "releases"
    )
    for p in found:
        budget = "" if p.epsilon_budget is None else f"{p.epsilon_budget:g}"
        row(
            shown,
            str(p.id),
            str(p.session_id),
            p.topic,
            str(p.team_id or ""),
            p.status,
            f"{p.epsilon_spent:g}",
            budget,
            str(p.releases),
        )
    emit(found, as_json, shown)


@insights_app.command("contributions")
def contributions(
    participation_id: Annotated[str, typer.Argument(help="The participation's id.")],
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """The releases one of your participations was counted in."""
    found = listed(
        Target(url, api_key, org),
        limit,
        lambda c, page: c.insights.participations.contributions(participation_id, limit=page),
    )
    shown = table(f"{len(found)} contributions", "insight", "when", "ε", "buckets present", "clamped total")
    for k in found:
        row(
            shown, str(k.insight_id), when(k.created_at), f"{k.epsilon:g}", str(k.buckets_present), str(k.clamped_total)
        )
    emit(found, as_json, shown)

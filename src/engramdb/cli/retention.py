"""CLI commands over retention, through the SDK (local or ``--url``; admin keys): ``engramdb retention policies
…`` (list, create, show, enable, disable, delete), ``engramdb retention run [--policy ID] [--dry-run]``,
``engramdb retention runs …`` (list, show) and ``engramdb retention holds …`` (list, create, release); and
``engramdb decay …`` (show, set): how fast each memory type's importance fades."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from engramdb.cli.connect import KeyOpt, OrgOpt, Target, UrlOpt, listed, run
from engramdb.cli.output import JsonOpt, LimitOpt, emit, out, row, table, when
from engramdb.schemas.decay import Decay
from engramdb.schemas.retention import RetentionRun
from engramdb.sdk import AsyncClient

retention_app = typer.Typer(
    help="Retention: policies, runs and their reports, legal holds (admin keys).", no_args_is_help=True
)
policies_app = typer.Typer(
    help="Retention policies: list, create, show, enable, disable, delete.", no_args_is_help=True
)
runs_app = typer.Typer(help="Reports of retention runs: list, show.", no_args_is_help=True)
holds_app = typer.Typer(help="Legal holds (they suspend deletion): list, create, release.", no_args_is_help=True)
retention_app.add_typer(policies_app, name="policies")
retention_app.add_typer(runs_app, name="runs")
retention_app.add_typer(holds_app, name="holds")
decay_app = typer.Typer(
    help="Decay: each memory type's half-life in the organization (show, set).", no_args_is_help=True
)
APPS = {"retention": retention_app, "decay": decay_app}
IdArg = Annotated[str, typer.Argument(help="Its id.")]


def _counts(report: RetentionRun) -> str:
    done = [f"{target} {action} {n:,}" for target, per in report.counts.items() for action, n in per.items()]
    return "; ".join(done) or "nothing"


@policies_app.command("list")
def policies_list(
    target: Annotated[str | None, typer.Option(help="Only this target's (memories, messages, …).")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List retention policies, newest first."""
    found = run(Target(url, api_key, org), lambda c: c.retention.policies.list(target=target).to_list())
    shown = table(f"{len(found)} policies", "id", "name", "target", "action", "after", "keep", "narrowed to", "on")
    for p in found:
        narrowed = {k: getattr(p, k) for k in ("app_id", "team_id", "user_id", "memory_type", "state")}
        scope = ", ".join(f"{k.removesuffix('_id')} {v}" for k, v in narrowed.items() if v is not None)
        after = f"{p.after_days} d{' idle' if p.basis == 'idle' else ''}"
        on = "yes" if p.enabled else "no"
        row(shown, str(p.id), p.name, p.target, p.action, after, str(p.keep_latest or ""), scope, on)
    emit(found, as_json, shown)


@policies_app.command("create")
def policies_create(
    name: Annotated[str, typer.Argument(help="A name for people.")],
    target: Annotated[
        str,
        typer.Option(
            help="memories, messages, sessions, documents, audit_log, access_log, jobs or webhook_deliveries."
        ),
    ],
    after_days: Annotated[int, typer.Option("--after-days", help="Act on rows older than this many days.")],
    archive: Annotated[bool, typer.Option("--archive", help="Archive instead of deleting (memories).")] = False,
    idle: Annotated[bool, typer.Option("--idle", help="Count days since last use (memories, sessions).")] = False,
    keep_latest: Annotated[int | None, typer.Option("--keep-latest", help="Keep each user's newest N.")] = None,
    app_id: Annotated[str | None, typer.Option("--app", help="Only this app's rows.")] = None,
    team_id: Annotated[str | None, typer.Option("--team", help="Only this team's rows.")] = None,
    user_id: Annotated[str | None, typer.Option("--user", help="Only this user's rows.")] = None,
    memory_type: Annotated[str | None, typer.Option("--type", help="Only memories of this type.")] = None,
    state: Annotated[str | None, typer.Option(help="Only memories in this state.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled (try it with a dry run).")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Create a retention policy."""
    fields: dict[str, Any] = {"name": name, "target": target, "after_days": after_days, "enabled": not disabled}
    fields.update(action="archive" if archive else "delete", basis="idle" if idle else "age")
    narrowing = {"keep_latest": keep_latest, "app_id": app_id, "team_id": team_id, "user_id": user_id}
    narrowing.update(memory_type=memory_type, state=state)
    fields.update({k: v for k, v in narrowing.items() if v is not None})
    made = run(Target(url, api_key, org), lambda c: c.retention.policies.create(**fields))
    out.print_json(made.model_dump_json())


@policies_app.command("show")
def policies_show(policy_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Print one policy."""
    out.print_json(run(Target(url, api_key, org), lambda c: c.retention.policies.get(policy_id)).model_dump_json())


def _enable(policy_id: str, enabled: bool, target: Target) -> None:
    run(target, lambda c: c.retention.policies.update(policy_id, enabled=enabled))
    out.print(f"{'enabled' if enabled else 'disabled'} policy {policy_id}")


@policies_app.command("enable")
def policies_enable(policy_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Let the periodic sweep apply the policy."""
    _enable(policy_id, True, Target(url, api_key, org))


@policies_app.command("disable")
def policies_disable(policy_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Keep the policy, but leave it out of sweeps (it can still be run by hand)."""
    _enable(policy_id, False, Target(url, api_key, org))


@policies_app.command("delete")
def policies_delete(policy_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Delete a policy (the reports of its runs stay)."""
    run(Target(url, api_key, org), lambda c: c.retention.policies.delete(policy_id))
    out.print(f"deleted policy {policy_id}")


@retention_app.command("run")
def retention_run(
    policy: Annotated[str | None, typer.Option("--policy", help="Run this policy only (enabled or not).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would go; change nothing.")] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Delete expired memories and sessions and run every enabled policy now (or one policy), and print the
    report: rows archived or deleted per table and per step."""

    async def work(c: AsyncClient) -> RetentionRun:
        if policy is not None:
            return await c.retention.policies.run(policy, dry_run=dry_run)
        return await c.retention.run(dry_run=dry_run)

    report = run(Target(url, api_key, org), work)
    shown = table(
        f"{'dry run: would change' if dry_run else 'changed'}: {_counts(report)}",
        "step",
        "target",
        "action",
        "rows",
        "note",
    )
    for s in report.steps:
        note = s.skipped or (f"{s.partitions_dropped} partitions dropped" if s.partitions_dropped else "")
        row(shown, s.name, s.target, s.action, f"{s.rows:,}", note)
    emit(report, as_json, shown)
    if report.error:
        out.print(f"stopped by an error: {report.error}", markup=False, highlight=False)
        raise typer.Exit(1)


@runs_app.command("list")
def runs_list(
    policy: Annotated[str | None, typer.Option("--policy", help="Only this policy's runs.")] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Reports of retention runs, newest first."""
    found = listed(
        Target(url, api_key, org), limit, lambda c, page: c.retention.runs.list(policy_id=policy, limit=page)
    )
    shown = table(f"{len(found)} runs", "id", "started", "trigger", "dry", "policy", "changed", "error")
    for r in found:
        dry = "yes" if r.dry_run else ""
        row(shown, str(r.id), when(r.started_at), r.trigger, dry, str(r.policy_id or "all"), _counts(r), r.error or "")
    emit(found, as_json, shown)


@runs_app.command("show")
def runs_show(run_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Print one run's report."""
    out.print_json(run(Target(url, api_key, org), lambda c: c.retention.runs.get(run_id)).model_dump_json())


@holds_app.command("list")
def holds_list(
    released: Annotated[bool, typer.Option("--released", help="Include released holds.")] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Legal holds, newest first (active ones unless --released)."""
    found = run(Target(url, api_key, org), lambda c: c.legal_holds.list(include_released=released).to_list())
    shown = table(f"{len(found)} holds", "id", "on", "reason", "placed", "released")
    for h in found:
        row(shown, str(h.id), str(h.user_id or "organization"), h.reason, when(h.created_at), when(h.released_at))
    emit(found, as_json, shown)


@holds_app.command("create")
def holds_create(
    reason: Annotated[str, typer.Argument(help="Why (a matter, a case number).")],
    user_id: Annotated[
        str | None, typer.Option("--user", help="Hold this user's data (default: the organization).")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Place a legal hold: nothing of the user (or the organization) is deleted by retention or erasure."""
    made = run(Target(url, api_key, org), lambda c: c.legal_holds.create(reason=reason, user_id=user_id))
    out.print(f"legal hold {made.id} on {made.user_id or 'the organization'}")


@holds_app.command("release")
def holds_release(hold_id: IdArg, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Release a legal hold (it stays on record)."""
    made = run(Target(url, api_key, org), lambda c: c.legal_holds.release(hold_id))
    out.print(f"released legal hold {made.id}")


def _show_decay(found: Decay, as_json: bool) -> None:
    shown = table("half-lives (days; 0: no decay)", "type", "in force", "server's", "organization's")
    for d in found.data:
        own = "" if d.override_half_life_days is None else f"{d.override_half_life_days:g}"
        row(shown, d.memory_type, f"{d.half_life_days:g}", f"{d.default_half_life_days:g}", own)
    emit(found, as_json, shown)


@decay_app.command("show")
def decay_show(as_json: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """Each memory type's half-life in force, the server's and the organization's own."""
    _show_decay(run(Target(url, api_key, org), lambda c: c.decay.get()), as_json)


@decay_app.command("set")
def decay_set(
    half_lives: Annotated[
        list[str] | None,
        typer.Argument(help="TYPE=DAYS pairs, e.g. episodic=7 task=0 (0: no decay). Types left out: the server's."),
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Set the organization's own half-lives, whole (admin); with no pairs, every type has the server's again."""
    wanted: dict[str, float] = {}
    for pair in half_lives or []:
        kind, _, days = pair.partition("=")
        try:
            wanted[kind.strip()] = float(days)
        except ValueError:
            raise typer.BadParameter(f"{pair!r}: write TYPE=DAYS, e.g. episodic=7", param_hint="HALF_LIVES") from None
    _show_decay(run(Target(url, api_key, org), lambda c: c.decay.set(half_life_days=wanted)), as_json)

"""The ``engramdb`` command. Operator commands (serve, worker, migrate, init, orgs, reembed, doctor, mcp,
backup, restore) act on this machine; the record commands (keys, users, teams, apps, sessions, chat-import,
search, memories, facts, graph, jobs, ingest, export, import, erase …) go through the SDK to this machine's
service or a remote one (``--url``)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from engramdb import bootstrap
from engramdb._version import __version__
from engramdb.cli import backup as backups
from engramdb.cli import (
    connect,
    contexts,
    directory,
    erasure,
    insights,
    library,
    output,
    records,
    retention,
    sharing,
    transfer,
    work,
)
from engramdb.cli.connect import KeyOpt, Target, UrlOpt
from engramdb.cli.connect import OrgOpt as TargetOrgOpt
from engramdb.config import Settings
from engramdb.errors import ConfigurationError, EngramError
from engramdb.providers.embedder import create_embedder
from engramdb.schemas.directory import Organization
from engramdb.services.tenancy import keys as key_service
from engramdb.storage.database import Database, resolve_url
from engramdb.storage.migrate import check_language, check_server, migrate, prepare_vectors, schema_state

app = typer.Typer(help="Engram: long-term memory for AI agents.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organizations on this server.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(orgs_app, name="orgs")
out = Console()
err = Console(stderr=True)
T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
OrgOpt = Annotated[str, typer.Option("--org", help="Organization name or id.")]


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's ValidationError: say which variable is wrong
        err.print(f"[red]error:[/red] invalid configuration: {exc}")
        raise typer.Exit(2) from exc


def _fail(exc: EngramError) -> typer.Exit:
    err.print(f"[red]error:[/red] {exc.detail}")
    return typer.Exit(2 if isinstance(exc, ConfigurationError) else 1)


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]], *, as_json: bool = False) -> T:
    """Connect (starting the embedded server if needed), bring the schema up to date, run ``work``."""

    async def run() -> T:
        url = resolve_url(settings)
        migrate(url)
        db = Database.connect(settings, url=url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except EngramError as exc:
        if as_json:  # a script reading --json gets JSON either way: the error as an object, on stdout
            out.print_json(json.dumps({"error": exc.slug, "title": exc.title, "detail": exc.detail}))
        raise _fail(exc) from exc


async def _one_org(db: Database, ref: str) -> Organization:
    found = await key_service.find_organizations(db, ref)
    if not found:
        raise ConfigurationError(
            f"no organization named or with id '{ref}'; create one with `engramdb init --org NAME`"
        )
    if len(found) > 1:
        raise ConfigurationError(f"several organizations are named '{ref}'; pass its id instead")
    return found[0]


def _dump(model: Any) -> str:
    return json.dumps(model.model_dump(mode="json"), indent=2)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (ENGRAM_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (ENGRAM_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (ENGRAM_WORKERS).")] = None,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Apply migrations at start.")] = True,
) -> None:
    """Start the API server (with the embedded PostgreSQL unless ENGRAM_DATABASE_URL is set)."""
    import uvicorn

    settings = _settings()
    bind_host = host or settings.host
    bind_port = port or settings.port
    # The port first: a busy one ends the command at once, before a database is started for nothing.
    listener = _listen(bind_host, bind_port)
    try:
        url = resolve_url(settings)
        check_server(url)
        check_language(url, settings.search_language)
        if migrate_first and settings.auto_migrate:
            migrate(url)
    except EngramError as exc:
        listener.close()
        raise _fail(exc) from exc
    # The app (in this process, or in each worker process) joins the same embedded server, or the same
    # URL, from the same environment; migrations are done.
    os.environ["ENGRAM_AUTO_MIGRATE"] = "false"
    err.print(f"Engram {__version__} on http://{bind_host}:{bind_port}  (docs: /docs, health: /v1/health)")
    options: dict[str, Any] = {
        "factory": True,
        "host": bind_host,
        "port": bind_port,
        "workers": workers or settings.workers,
        "log_level": settings.log_level,
        "proxy_headers": False,
    }
    if options["workers"] > 1:
        listener.close()  # uvicorn binds it again for its worker processes
        with _shared_metrics():
            uvicorn.run("engramdb.server:create_app_from_env", **options)
        return
    server = uvicorn.Server(uvicorn.Config("engramdb.server:create_app_from_env", **options))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[listener])
    if not server.started:
        raise typer.Exit(3)  # uvicorn's start-up failure status; it logged why


@contextlib.contextmanager
def _shared_metrics() -> Iterator[None]:
    """Worker processes keep their metrics in files of one fresh directory, which a scrape answered by any
    of them sums (prometheus-client's multiprocess mode, ``engramdb.metrics``). A directory the operator
    named in ``PROMETHEUS_MULTIPROC_DIR`` is used as it is (empty it between runs)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="engram-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        try:
            yield
        finally:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (as uvicorn binds one), or exit with one line saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            why = (
                f"port {port} on {host} is already in use (another engramdb serve?): stop what listens there, "
                "or pick another port with --port or ENGRAM_PORT"
            )
        else:
            why = (
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): check --host/ENGRAM_HOST, --port/ENGRAM_PORT"
            )
        err.print(f"[red]error:[/red] {why}", soft_wrap=True)
        raise typer.Exit(2) from exc
    sock.set_inheritable(True)
    return sock


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="Extraction and narrative jobs run at once (ENGRAM_WORKER_CONCURRENCY)."),
    ] = None,
) -> None:
    """Run background jobs (extraction, summaries, narratives) until interrupted. `engramdb serve` runs
    one already; start more of these, on any machine that reaches the database, to scale out."""
    settings = _settings()
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    err.print(f"Engram {__version__} worker: running jobs (Ctrl-C stops; unfinished jobs are retried)")
    try:
        asyncio.run(bootstrap.work(settings, name="cli"))
    except KeyboardInterrupt:
        err.print("stopped")
    except EngramError as exc:
        raise _fail(exc) from exc


@app.command("mcp")
def mcp_cmd(
    api_key: Annotated[
        str, typer.Option(envvar="ENGRAM_API_KEY", help="The API key the tools act as.", show_default=False)
    ] = "",
) -> None:
    """Serve the MCP tools over stdio for a desktop MCP client (Claude Desktop, Cursor, …); the same
    tools are served over HTTP at /mcp by `engramdb serve`. Logs go to stderr: stdout is the protocol."""
    from engramdb.mcp.stdio import run_stdio

    if not api_key:
        err.print("[red]error:[/red] pass --api-key or set ENGRAM_API_KEY (create a key with `engramdb init`)")
        raise typer.Exit(2)
    try:
        run_stdio(_settings(), api_key)
    except KeyboardInterrupt:
        pass
    except EngramError as exc:
        raise _fail(exc) from exc


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="The folder or git working tree to sync.")],
    repo: Annotated[str, typer.Option("--repo", help="Repository name (created on first sync).")],
    prune: Annotated[bool, typer.Option("--prune/--no-prune", help="Delete documents of files that are gone.")] = True,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: TargetOrgOpt = None,
) -> None:
    """Sync a folder into a repository: only changed chunks are re-embedded, git's ignore rules apply,
    binaries and bad files are skipped (and listed), files deleted since the last sync are removed."""
    from engramdb.cli import ingest as ingesting

    try:
        report = ingesting.run(Target(url, api_key, org), path, repo, prune=prune, console=err)
    except EngramError as exc:
        raise _fail(exc) from exc
    out.print(ingesting.summary(report))
    for skipped_path, reason in report.skipped[:20]:
        out.print(f"  skipped {skipped_path}: {reason}")
    if len(report.skipped) > 20:
        out.print(f"  … and {len(report.skipped) - 20} more skipped")
    for gone in report.deleted[:20]:
        out.print(f"  deleted {gone}")


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply pending database migrations (safe to run while servers are up)."""
    settings = _settings()
    try:
        url = resolve_url(settings)
        state = migrate(url)
        embedder = create_embedder(settings)
        created = prepare_vectors(url, embedder.model, embedder.dimensions)
    except EngramError as exc:
        raise _fail(exc) from exc
    out.print(f"schema at revision {state.current} (head {state.head})")
    if created:
        out.print(f"created vector indexes for {embedder.model}: {', '.join(created)}")


@app.command()
def init(org: OrgOpt, as_json: JsonOpt = False) -> None:
    """Create an organization and its first admin API key, and print the key (shown once)."""
    settings = _settings()

    async def work(db: Database) -> Any:
        return await key_service.create_organization(db, name=org)

    organization, key = _with_db(settings, work, as_json=as_json)
    if as_json:
        out.print_json(
            json.dumps(
                {
                    "org_id": str(organization.id),
                    "org_name": organization.name,
                    "api_key": key.api_key,
                    "key_id": str(key.id),
                }
            )
        )
        return
    out.print(f"Organization [bold]{organization.name}[/bold] created: {organization.id}")
    out.print(f"Admin API key (shown once, store it now):\n[bold green]{key.api_key}[/bold green]")


@orgs_app.command("list")
def orgs_list(as_json: JsonOpt = False) -> None:
    """List organizations."""
    orgs = _with_db(_settings(), key_service.list_organizations)
    table = output.table(f"{len(orgs)} organizations", "id", "name", "created")
    for o in orgs:
        output.row(table, str(o.id), o.name, output.when(o.created_at))
    output.emit(orgs, as_json, table)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="A label for the key.")] = "cli key",
    scope: Annotated[list[str] | None, typer.Option(help="read, write or admin; repeat for several.")] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Bind the key to this user, by your app's id for them (created if new)."),
    ] = None,
    user_id: Annotated[
        str | None, typer.Option("--user-id", help="Bind the key to this user, by Engram's id (a UUID).")
    ] = None,
    team_id: Annotated[uuid.UUID | None, typer.Option(help="Bind the key to this team.")] = None,
    agent_id: Annotated[uuid.UUID | None, typer.Option(help="Bind the key to this agent.")] = None,
    expires_at: Annotated[datetime | None, typer.Option(help="Expiry (ISO 8601).")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: TargetOrgOpt = None,
) -> None:
    """Create an API key and print it (shown once). Bind it to a user with --user (your app's id for
    them, as the record commands take a user) or --user-id (Engram's id)."""
    if user is not None and user_id is not None:
        raise typer.BadParameter("name the user once: by --user (your app's id) or by --user-id (Engram's id)")
    fields: dict[str, Any] = {"name": name, "scopes": scope or ["read", "write"], "expires_at": expires_at}
    bound = {"user_id": _engram_user_id(user_id), "external_user_id": user, "team_id": team_id, "agent_id": agent_id}
    fields |= {k: v for k, v in bound.items() if v}
    key = connect.run(Target(url, api_key, org), lambda c: c.keys.create(**fields))
    if as_json:
        out.print_json(_dump(key))
        return
    out.print(f"API key {key.id} ({', '.join(key.scopes)}), shown once:\n[bold green]{key.api_key}[/bold green]")
    if key.user_id:
        out.print(f"bound to user {key.user_id}" + (f" ({user})" if user else ""), markup=False, highlight=False)


def _engram_user_id(value: str | None) -> uuid.UUID | None:
    """``--user-id``: Engram's id for a user; your app's own id for them goes in ``--user``."""
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise typer.BadParameter(
            f"'{value}' is not Engram's id for a user (a UUID); to name the user by your app's id for them, "
            f"pass --user {value}",
            param_hint="--user-id",
        ) from None


@keys_app.command("list")
def keys_list(
    include_revoked: Annotated[bool, typer.Option("--all", help="Revoked keys too.")] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: TargetOrgOpt = None,
) -> None:
    """List an organization's API keys (never their secrets)."""
    items = connect.run(Target(url, api_key, org), lambda c: c.keys.list(include_revoked=include_revoked).to_list())
    table = output.table(f"{len(items)} keys", "id", "name", "prefix", "scopes", "bound to", "last used", "revoked")
    for k in items:
        bound = ", ".join(f"{n}={v}" for n, v in (("team", k.team_id), ("user", k.user_id), ("agent", k.agent_id)) if v)
        output.row(
            table,
            str(k.id),
            k.name,
            k.prefix,
            ",".join(k.scopes),
            bound or "-",
            k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "never",
            "yes" if k.revoked_at else "",
        )
    output.emit(items, as_json, table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[uuid.UUID, typer.Argument(help="The key's id.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: TargetOrgOpt = None,
) -> None:
    """Revoke an API key at once."""
    key = connect.run(Target(url, api_key, org), lambda c: c.keys.revoke(key_id))
    out.print(f"revoked {key.id} ({key.name})")


@app.command()
def reembed(
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Rows per batch (two batches are in flight).")] = 128,
) -> None:
    """Embed every message and memory that has no vector of the configured model (after changing
    ENGRAM_EMBEDDER, or for imports written with defer_embedding), with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from engramdb.services.maintenance import backfill

    settings = _settings()

    async def run() -> tuple[int, str]:
        async with bootstrap.running(settings, upkeep=False, always_migrate=True, warm=False) as runtime:
            total = await backfill.count_pending(runtime, other_models=True)
            columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
            with Progress(*columns, console=err) as progress:
                task = progress.add_task(f"embedding with {runtime.embedder.model}", total=total)
                done = await backfill.backfill(
                    runtime,
                    other_models=True,
                    batch_size=batch_size,
                    on_progress=lambda n: progress.advance(task, n),
                )
            return done, runtime.embedder.model

    try:
        done, model = asyncio.run(run())
    except EngramError as exc:
        raise _fail(exc) from exc
    out.print(f"embedded {done} rows with {model}; nothing is left to embed")


@app.command()
def doctor() -> None:
    """Check configuration, database, pgvector and migrations; exit 1 if anything needs fixing."""
    settings = _settings()
    problems = 0

    def line(ok: bool, label: str, detail: str) -> None:
        nonlocal problems
        problems += 0 if ok else 1
        out.print(f"{'[green]ok[/green]  ' if ok else '[red]FAIL[/red]'} {label}: {detail}")

    line(True, "version", __version__)
    if settings.embedded:
        line(True, "database", f"embedded PostgreSQL in {settings.data_dir / 'pgdata'}")
    else:
        line(True, "database", "ENGRAM_DATABASE_URL")
    try:
        url = resolve_url(settings)
        pg_version, vector_version = check_server(url)
        line(True, "postgresql", pg_version)
        line(True, "pgvector", vector_version)
        state = schema_state(url)
        line(
            state.up_to_date,
            "migrations",
            f"at {state.current}"
            if state.up_to_date
            else f"at {state.current}, head is {state.head}: run `engramdb migrate`",
        )
        with_role = _role_check(url)
        line(with_role is None, "row-level security", with_role or "tenant role engram_app cannot bypass RLS")
        if _full_text_is_leakproof(url):
            line(True, "full-text search", "the text match can use its index under row-level security")
        else:
            out.print(
                "[yellow]warn[/yellow] full-text search: ts_match_vq is not LEAKPROOF, so keyword search scans "
                "every row of a scope (slow for large organizations); as a superuser run "
                "`ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) LEAKPROOF` (see docs/decisions/0003)"
            )
        if state.up_to_date:
            workers, counts = _queue_state(url, settings.worker_stalled_s)
            detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no jobs yet"
            line(True, "jobs", f"{detail}; {workers} live worker(s)")
            if counts.get("queued") and not workers:
                out.print(
                    "[yellow]warn[/yellow] jobs are queued but no worker is running: start `engramdb serve` "
                    "(ENGRAM_WORKER_IN_SERVE=true) or `engramdb worker`"
                )
            hooks = _webhook_state(url)
            detail = ", ".join(f"{n} {status}" for status, n in sorted(hooks.items())) or "none"
            line(True, "webhook deliveries", f"{detail} (last 24 h)")
            if hooks.get("failed"):
                out.print(
                    "[yellow]warn[/yellow] webhook deliveries failed in the last day: see "
                    "`engramdb webhooks deliveries ID --status failed`, then `engramdb webhooks replay`"
                )
        llm = (
            "offline rules (no ENGRAM_LLM_BASE_URL)"
            if settings.llm_base_url is None
            else (f"{settings.llm_model} at {settings.llm_base_url}")
        )
        line(settings.llm_base_url is None or settings.llm_model is not None, "extraction", llm)
    except EngramError as exc:
        line(False, "database", exc.detail)
    except Exception as exc:  # unreachable server, bad credentials: say it plainly
        line(False, "database", f"{exc.__class__.__name__}: {exc}")
    if problems:
        raise typer.Exit(1)


def _queue_state(url: str, stalled_s: float) -> tuple[int, dict[str, int]]:
    """Live workers (recent heartbeat) and jobs by status, across every organization."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM procrastinate.procrastinate_workers"
            " WHERE last_heartbeat > now() - make_interval(secs => %s)",
            (stalled_s,),
        ).fetchone()
        counts: dict[object, object] = dict(conn.execute("SELECT status, count(*) FROM job GROUP BY status").fetchall())
    return (int(row[0]) if row else 0), {str(k): int(str(v)) for k, v in counts.items()}


def _webhook_state(url: str) -> dict[str, int]:
    """Webhook deliveries of the last day by status, across every organization."""
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM webhook_delivery WHERE created_at > now() - interval '1 day' GROUP BY status"
        ).fetchall()
    return {str(status): int(count) for status, count in rows}


def _full_text_is_leakproof(url: str) -> bool:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT proleakproof FROM pg_proc WHERE oid = 'ts_match_vq(tsvector,tsquery)'::regprocedure"
        ).fetchone()
    return bool(row and row[0])


def _role_check(url: str) -> str | None:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'engram_app'").fetchone()
    if row is None:
        return "role engram_app is missing: run `engramdb migrate`"
    if row[0] or row[1]:
        return "role engram_app can bypass row-level security: ALTER ROLE engram_app NOSUPERUSER NOBYPASSRLS"
    return None


# Backups, with the operator commands; the record commands after them in `--help`.
app.command("backup")(backups.backup)
app.command("restore")(backups.restore)
app.command("search")(records.search)
app.command("chat-import")(transfer.chat_import)
app.command("export")(transfer.export)
app.command("import")(transfer.import_)
app.command("erase")(erasure.erase)
app.command("offload")(contexts.offload)
_APPS = records.APPS | directory.APPS | library.APPS | work.APPS | retention.APPS | sharing.APPS | contexts.APPS
_APPS |= insights.APPS
for _name, _sub in _APPS.items():
    app.add_typer(_sub, name=_name)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

"""CLI commands for documents, repositories and webhooks, through the SDK (local or ``--url``)."""

from __future__ import annotations

from typing import Annotated

import typer

from engramdb.cli.connect import KeyOpt, OrgOpt, Target, UrlOpt, listed, run
from engramdb.cli.output import JsonOpt, LimitOpt, emit, out, row, short, table, when

documents_app = typer.Typer(help="Documents: list, show, delete (add with `engramdb ingest`).", no_args_is_help=True)
repos_app = typer.Typer(help="Repositories (synced folders): list, delete.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Webhooks: endpoints, deliveries, replays (admin keys).", no_args_is_help=True)
APPS = {"documents": documents_app, "repos": repos_app, "webhooks": webhooks_app}


@documents_app.command("list")
def documents_list(
    repo: Annotated[str | None, typer.Option("--repo", help="Only this repository's (by id).")] = None,
    path_prefix: Annotated[str | None, typer.Option(help="Only paths starting with this.")] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List documents, newest first."""
    found = listed(
        Target(url, api_key, org),
        limit,
        lambda c, page: c.documents.list(repository_id=repo, path_prefix=path_prefix, limit=page),
    )
    shown = table(f"{len(found)} documents", "id", "path or title", "type", "chunks", "bytes", "updated")
    for d in found:
        name = d.path or d.title or ""
        row(shown, str(d.id), name, d.content_type, str(d.chunk_count), f"{d.size_bytes:,}", when(d.updated_at))
    emit(found, as_json, shown)


@documents_app.command("show")
def documents_show(
    document_id: Annotated[str, typer.Argument()],
    content: Annotated[bool, typer.Option("--content", help="Include the extracted text.")] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Print one document's record (and its text with --content)."""
    found = run(Target(url, api_key, org), lambda c: c.documents.get(document_id, include_content=content))
    out.print_json(found.model_dump_json())


@documents_app.command("delete")
def documents_delete(
    document_id: Annotated[str, typer.Argument()], url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """Delete a document with its chunks and vectors."""
    run(Target(url, api_key, org), lambda c: c.documents.delete(document_id))
    out.print(f"deleted document {document_id}")


@repos_app.command("list")
def repos_list(as_json: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """List repositories."""
    found = run(Target(url, api_key, org), lambda c: c.repositories.list().to_list())
    shown = table(f"{len(found)} repositories", "id", "name", "documents", "source", "last synced")
    for r in found:
        row(shown, str(r.id), r.name, str(r.document_count), r.source or "", when(r.last_synced_at))
    emit(found, as_json, shown)


@repos_app.command("delete")
def repos_delete(
    repository_id: Annotated[str, typer.Argument()], url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """Delete a repository and all its documents."""
    run(Target(url, api_key, org), lambda c: c.repositories.delete(repository_id))
    out.print(f"deleted repository {repository_id}")


@webhooks_app.command("list")
def webhooks_list(as_json: JsonOpt = False, url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None) -> None:
    """List webhook endpoints (never their secrets)."""
    found = run(Target(url, api_key, org), lambda c: c.webhooks.list().to_list())
    shown = table(f"{len(found)} webhooks", "id", "url", "events", "enabled")
    for w in found:
        row(shown, str(w.id), w.url, ", ".join(w.event_types), "yes" if w.enabled else "no")
    emit(found, as_json, shown)


@webhooks_app.command("create")
def webhooks_create(
    endpoint: Annotated[str, typer.Argument(metavar="URL", help="Where to POST events (http or https).")],
    event: Annotated[
        list[str] | None, typer.Option("--event", help="An event type, e.g. memory.created (repeatable; default all).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note for people.")] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Subscribe a URL to events and print its signing secret (shown once)."""
    fields = {"url": endpoint, "event_types": event, "description": description}
    made = run(Target(url, api_key, org), lambda c: c.webhooks.create(**{k: v for k, v in fields.items() if v}))
    out.print(f"webhook {made.id} for {', '.join(made.event_types)}; signing secret, shown once:")
    out.print(made.secret, markup=False, highlight=False)


@webhooks_app.command("delete")
def webhooks_delete(
    webhook_id: Annotated[str, typer.Argument()], url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """Delete a webhook endpoint and its delivery log."""
    run(Target(url, api_key, org), lambda c: c.webhooks.delete(webhook_id))
    out.print(f"deleted webhook {webhook_id}")


@webhooks_app.command("test")
def webhooks_test(
    webhook_id: Annotated[str, typer.Argument()], url: UrlOpt = None, api_key: KeyOpt = None, org: OrgOpt = None
) -> None:
    """Queue a webhook.test event to the endpoint (see `webhooks deliveries` for how it went)."""
    delivery = run(Target(url, api_key, org), lambda c: c.webhooks.test(webhook_id))
    out.print(f"queued delivery {delivery.id}")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    webhook_id: Annotated[str, typer.Argument()],
    status: Annotated[str | None, typer.Option(help="pending, succeeded or failed.")] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """The delivery log of an endpoint, newest first."""
    found = listed(
        Target(url, api_key, org), limit, lambda c, page: c.webhooks.deliveries(webhook_id, status=status, limit=page)
    )
    shown = table(f"{len(found)} deliveries", "id", "event", "status", "attempts", "last code", "last error")
    for d in found:
        code = str(d.last_status_code or "")
        row(shown, str(d.id), d.event_type, d.status, str(d.attempts), code, short(d.last_error, 60))
    emit(found, as_json, shown)


@webhooks_app.command("replay")
def webhooks_replay(
    webhook_id: Annotated[str, typer.Argument()],
    delivery_id: Annotated[str, typer.Argument()],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Send a delivery again (the same event id, so the receiver can tell)."""
    delivery = run(Target(url, api_key, org), lambda c: c.webhooks.replay(webhook_id, delivery_id))
    out.print(f"delivery {delivery.id} queued again ({delivery.status})")

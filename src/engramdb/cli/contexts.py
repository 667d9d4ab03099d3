"""CLI commands for offloaded contexts, through the SDK (local or ``--url``): ``engramdb offload FILE`` and
``engramdb contexts restore|list|show|delete``. (``engramdb restore`` restores a backup.)"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from engramdb import limits
from engramdb.cli.connect import KeyOpt, OrgOpt, Target, UrlOpt, listed, run
from engramdb.cli.output import JsonOpt, LimitOpt, emit, json_object, out, row, short, table, when
from engramdb.schemas.contexts import Context, ContextResult
from engramdb.sdk import AsyncClient

contexts_app = typer.Typer(
    help="Offloaded contexts: restore, list, show, delete (add with `engramdb offload`).", no_args_is_help=True
)
APPS = {"contexts": contexts_app}
err = Console(stderr=True)
_SHOWN_FROM = 1_048_576  # a transfer this large shows a progress bar


def _progress() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    return Progress(*columns, console=err, transient=True)


def offload(
    file: Annotated[Path, typer.Argument(help="The file to offload ('-' reads standard input).", show_default=False)],
    title: Annotated[str | None, typer.Option(help="A title (search finds it by it too).")] = None,
    content_type: Annotated[
        str | None, typer.Option("--type", help="Its media type (default: from the file name).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat for several).")] = None,
    metadata: Annotated[str | None, typer.Option(help="A JSON object.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="The user's external id.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="The session it belongs to (id).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="The task it belongs to (id).")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="The agent it belongs to (id).")] = None,
    ttl: Annotated[int | None, typer.Option("--ttl", min=1, help="Expire it after this many seconds.")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Offload a file (a transcript, a scratchpad, tool output): stored compressed (zstandard), summarized,
    embedded and searchable; restored byte-exact with `engramdb contexts restore ID`. The same content
    offloaded twice into the same scope is stored once."""
    data = sys.stdin.buffer.read(limits.MAX_CONTEXT_BYTES + 1) if str(file) == "-" else _read(file)
    if len(data) > limits.MAX_CONTEXT_BYTES:
        err.print(f"[red]error:[/red] {file} is over the {limits.MAX_CONTEXT_BYTES:,}-byte limit of a context (16 MiB)")
        raise typer.Exit(1)
    fields = {
        "title": title,
        "filename": None if str(file) == "-" else file.name,
        "tags": tag or None,
        "metadata": json_object(metadata) if metadata else None,
        "external_user_id": user,
        "session_id": session,
        "task_id": task,
        "agent_id": agent,
        "ttl_s": ttl,
    }
    sent: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}

    async def work(client: AsyncClient) -> ContextResult:
        if len(data) < _SHOWN_FROM:
            return await client.contexts.offload(data, content_type=content_type, **sent)
        with _progress() as progress:
            bar = progress.add_task("sending", total=len(data))

            def sending(done: int) -> None:
                progress.update(bar, completed=done)
                if done >= len(data):
                    progress.update(bar, description="compressing and embedding")

            return await client.contexts.offload(data, content_type=content_type, progress=sending, **sent)

    result = run(Target(url, api_key, org), work)
    if as_json:
        out.print_json(result.model_dump_json())
        return
    ctx = result.context
    verb = "offloaded" if result.action == "created" else "already stored as"
    out.print(
        f"{verb} {ctx.id}: {ctx.original_bytes:,} bytes stored in {ctx.stored_bytes:,} "
        f"({ctx.compression_ratio:.2f}×, {ctx.content_type})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _read(file: Path) -> bytes:
    try:
        with file.open("rb") as handle:
            return handle.read(limits.MAX_CONTEXT_BYTES + 1)
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot read {file}: {exc.strerror or exc}")
        raise typer.Exit(1) from exc


@contexts_app.command("restore")
def contexts_restore(
    context_id: Annotated[str, typer.Argument(help="The context's id.", show_default=False)],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write it to this file (default: standard output).")
    ] = None,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Restore a context's content, byte-exact (checked against its SHA-256)."""

    async def work(client: AsyncClient) -> Context:
        ctx = await client.contexts.get(context_id)
        if output is None:
            await _write(client, ctx, sys.stdout.buffer, None)
            return ctx
        partial = output.with_name(output.name + ".part")
        try:
            with partial.open("wb") as handle:
                if ctx.original_bytes < _SHOWN_FROM:
                    await _write(client, ctx, handle, None)
                else:
                    with _progress() as progress:
                        await _write(client, ctx, handle, progress)
            partial.replace(output)
        finally:
            partial.unlink(missing_ok=True)
        return ctx

    ctx = run(Target(url, api_key, org), work)
    if output is not None:
        err.print(f"restored {ctx.id} to {output} ({ctx.original_bytes:,} bytes)", markup=False, highlight=False)


async def _write(client: AsyncClient, ctx: Context, handle: BinaryIO, progress: Progress | None) -> None:
    digest = hashlib.sha256()
    bar = progress.add_task("restoring", total=ctx.original_bytes) if progress is not None else None
    async for piece in client.contexts.stream(ctx.id):
        digest.update(piece)
        handle.write(piece)
        if progress is not None and bar is not None:
            progress.advance(bar, len(piece))
    handle.flush()
    if digest.hexdigest() != ctx.content_sha256:
        raise ValueError(f"the restored bytes of {ctx.id} do not match its SHA-256; nothing was kept")


@contexts_app.command("list")
def contexts_list(
    user: Annotated[str | None, typer.Option("--user", help="The user's external id.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Only this session's (id).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only this task's (id).")] = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """List offloaded contexts, newest first."""
    found = listed(
        Target(url, api_key, org),
        limit,
        lambda c, page: c.contexts.list(external_user_id=user, session_id=session, task_id=task, limit=page),
    )
    shown = table(f"{len(found)} contexts", "id", "title or summary", "type", "bytes", "ratio", "created")
    for ctx in found:
        name = ctx.title or ctx.filename or short(ctx.summary, 60)
        row(
            shown,
            str(ctx.id),
            name,
            ctx.content_type,
            f"{ctx.original_bytes:,}",
            f"{ctx.compression_ratio:.2f}",
            when(ctx.created_at),
        )
    emit(found, as_json, shown)


@contexts_app.command("show")
def contexts_show(
    context_id: Annotated[str, typer.Argument(help="The context's id.", show_default=False)],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Show a context's description (sizes, ratio, type, summary), not its content."""
    ctx = run(Target(url, api_key, org), lambda c: c.contexts.get(context_id))
    out.print_json(ctx.model_dump_json())


@contexts_app.command("delete")
def contexts_delete(
    context_id: Annotated[str, typer.Argument(help="The context's id.", show_default=False)],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Delete a context."""
    run(Target(url, api_key, org), lambda c: c.contexts.delete(context_id))
    out.print(f"deleted {context_id}", markup=False, highlight=False)

"""CLI commands that move data in and out: ``chat-import`` (conversation exports with their original
times), ``export`` and ``import`` (an organization or one user as JSON Lines). Through the SDK, so
they work on this machine's service or a remote one (``--url``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from engramdb import limits
from engramdb.cli import chat_formats
from engramdb.cli.connect import KeyOpt, OrgOpt, Target, UrlOpt, run
from engramdb.sdk import AsyncClient

out = Console()
err = Console(stderr=True)


def _bar() -> Progress:
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=err)


def chat_import(
    file: Annotated[Path, typer.Argument(help="OpenAI-messages JSON or JSONL, or a ChatGPT conversations.json.")],
    user: Annotated[str, typer.Option("--user", help="External id of the user the conversations belong to.")],
    title: Annotated[str | None, typer.Option(help="Session title (default: the conversation's).")] = None,
    extract: Annotated[
        bool, typer.Option("--extract/--no-extract", help="Queue extraction of memories and facts afterwards.")
    ] = True,
    again: Annotated[
        bool, typer.Option("--again", help="Import conversations that were imported before, once more.")
    ] = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Import conversations as sessions, keeping each message's original time; one extraction job per
    session runs in the background once it is in (see `engramdb jobs list`). A conversation imported
    before for the same user is skipped (--again imports it anyway)."""
    try:
        conversations = chat_formats.read(file)
    except chat_formats.FormatError as exc:
        err.print(f"[red]error:[/red] {file}: {exc}")
        raise typer.Exit(2) from exc
    total = sum(len(c.messages) for c in conversations)
    if total == 0:
        err.print(f"[red]error:[/red] {file} holds no message with text")
        raise typer.Exit(2)

    async def work(client: AsyncClient) -> tuple[list[tuple[str, int]], int]:
        done: list[tuple[str, int]] = []
        already = 0
        with _bar() as progress:
            task = progress.add_task(f"importing {file.name}", total=total)
            for conversation in conversations:
                if not conversation.messages:
                    continue
                key = chat_formats.fingerprint(conversation)
                if not again:
                    seen = await client.sessions.list(
                        external_user_id=user, metadata={"import_key": key}, limit=1
                    ).page()
                    if seen.data:
                        already += 1
                        progress.advance(task, len(conversation.messages))
                        continue
                session = await client.sessions.create(
                    external_user_id=user,
                    title=(title or conversation.title or file.stem)[: limits.MAX_NAME_CHARS],
                    metadata={"imported_from": file.name[: limits.MAX_NAME_CHARS], "import_key": key},
                )
                batches = range(0, len(conversation.messages), limits.MAX_MESSAGES_PER_BATCH)
                for start in batches:
                    batch = conversation.messages[start : start + limits.MAX_MESSAGES_PER_BATCH]
                    last = start == batches[-1]
                    await client.sessions.messages.add(
                        session.id, batch, extract=extract and last, defer_embedding=len(conversation.messages) > 500
                    )
                    progress.advance(task, len(batch))
                done.append((str(session.id), len(conversation.messages)))
        return done, already

    sessions, already = run(Target(url, api_key, org), work)
    skipped = sum(c.skipped for c in conversations)
    imported = sum(count for _, count in sessions)
    out.print(f"imported {imported} messages into {len(sessions)} session(s) for user '{user}'")
    if already:
        out.print(f"  {already} conversation(s) were imported before and were left out (--again to import them)")
    for session_id, count in sessions[:20]:
        out.print(f"  session {session_id}: {count} messages")
    if skipped:
        out.print(f"  skipped {skipped} message(s) with no text (tool calls, images)")


def export(
    output: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: stdout).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's data (external id).")] = None,
    embeddings: Annotated[
        bool,
        typer.Option("--embeddings/--no-embeddings", help="Include vectors (no re-embedding on import)."),
    ] = True,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Export the organization (or one user) as JSON Lines: a header, then one record per line."""

    async def work(client: AsyncClient) -> int:
        written = 0
        sink = output.open("w", encoding="utf-8") if output else None
        try:
            with Progress(*Progress.get_default_columns()[:1], console=err, transient=True) as progress:
                task = progress.add_task("exporting", total=None)
                async for record in client.data.export(external_user_id=user, include_embeddings=embeddings):
                    line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                    if sink:
                        sink.write(line + "\n")
                    else:
                        print(line)
                    written += 1
                    progress.update(task, description=f"exporting: {written} records")
        finally:
            if sink:
                sink.close()
        return written

    count = run(Target(url, api_key, org), work)
    if output:
        out.print(f"exported {count} records to {output}")


def import_(
    file: Annotated[Path, typer.Argument(help="A file written by `engramdb export`.")],
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Import an export into the organization (ids and times kept; importing twice adds nothing)."""
    try:
        size = file.stat().st_size
        if size > limits.MAX_IMPORT_BYTES:
            raise typer.BadParameter(f"{file} is {size:,} bytes; one import takes at most {limits.MAX_IMPORT_BYTES:,}")
        content = file.read_bytes()
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot read {file}: {exc}")
        raise typer.Exit(2) from exc
    with err.status(f"importing {file.name} ({size:,} bytes)"):
        result = run(Target(url, api_key, org), lambda c: c.data.import_(content))
    table = Table(title=f"imported {file.name}", title_justify="left")
    table.add_column("records")
    table.add_column("imported", justify="right")
    table.add_column("already there", justify="right")
    for kind in sorted(set(result.imported) | set(result.skipped)):
        table.add_row(escape(kind), str(result.imported.get(kind, 0)), str(result.skipped.get(kind, 0)))
    out.print(table)
    if result.vectors.reembedded:
        out.print(f"{result.vectors.reembedded} rows will be embedded again in the background (another model)")

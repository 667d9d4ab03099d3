"""``engramdb erase``: erase one user, agent, session, document or repository for good, through the SDK
(this machine's service, or ``--url`` with an admin key), and print the erasure's receipt."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from engramdb.cli.connect import KeyOpt, OrgOpt, Target, UrlOpt, run
from engramdb.cli.output import JsonOpt, emit, out, row, table
from engramdb.schemas.erasure import ErasureReceipt
from engramdb.sdk import AsyncClient

err = Console(stderr=True)


def erase(
    user: Annotated[str | None, typer.Option("--user", help="Erase this user (its Engram id).")] = None,
    external_user: Annotated[
        str | None, typer.Option("--external-user", help="Erase this user, named by your app's external id.")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Erase this agent (its Engram id).")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Erase this session (its Engram id).")] = None,
    document: Annotated[str | None, typer.Option("--document", help="Erase this document (its Engram id).")] = None,
    repository: Annotated[
        str | None, typer.Option("--repository", help="Erase this repository (its Engram id).")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    api_key: KeyOpt = None,
    org: OrgOpt = None,
) -> None:
    """Erase one subject and everything it holds, from every table, for good (admin), and print the
    receipt: the pseudonym that stands for it in the audit log, the rows removed per table and a SHA-256
    to keep. Name exactly one of --user, --external-user, --agent, --session, --document, --repository."""
    named = {
        "user": user,
        "external user": external_user,
        "agent": agent,
        "session": session,
        "document": document,
        "repository": repository,
    }
    given = [(kind, ref) for kind, ref in named.items() if ref is not None]
    if len(given) != 1:
        flags = "--user, --external-user, --agent, --session, --document, --repository"
        err.print(f"[red]error:[/red] name exactly one of {flags}")
        raise typer.Exit(2)
    ((kind, ref),) = given

    async def work(client: AsyncClient) -> ErasureReceipt:
        if kind == "external user":
            return await client.users.erase((await client.users.get_by_external_id(ref)).id)
        if kind == "user":
            return await client.users.erase(ref)
        if kind == "agent":
            return await client.agents.erase(ref)
        if kind == "session":
            return await client.sessions.erase(ref)
        if kind == "document":
            return await client.documents.erase(ref)
        return await client.repositories.erase(ref)

    receipt = run(Target(url, api_key, org), work)
    if as_json:
        emit(receipt, True)
        return
    counts = table(f"erased: {receipt.subject.kind}, rows removed per table", "table", "rows")
    for name, rows in receipt.counts.items():
        row(counts, name, str(rows))
    emit(receipt, False, counts)
    out.print(f"pseudonym   {receipt.subject.pseudonym}")
    out.print(f"erased at   {receipt.erased_at.isoformat()}")
    out.print(f"sha256      {receipt.receipt_sha256}")
    out.print(
        f"Keep this receipt: the audit log's {receipt.subject.kind}.erased entry names the same pseudonym and "
        "holds the same counts and hash (`--json` prints it whole)."
    )

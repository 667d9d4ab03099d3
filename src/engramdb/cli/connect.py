"""Where a CLI command sends its calls: a remote server (``--url`` + ``--api-key``) or, by default, this
machine's own service, run in-process through the SDK's ASGI transport (the same app, checks and
errors as over HTTP). Locally, with no key, the command acts as an operator of one organization
(``--org``, needed when the server has several)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from engramdb import bootstrap, limits
from engramdb.api.app import create_app
from engramdb.api.deps import get_caller
from engramdb.cli.asgi import StreamingASGITransport
from engramdb.config import Settings
from engramdb.errors import ConfigurationError, EngramError
from engramdb.sdk import APIConnectionError, APIStatusError, AsyncClient
from engramdb.sdk._async.pager import AsyncPager
from engramdb.services.core.caller import Caller
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
err = Console(stderr=True)

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", envvar="ENGRAM_URL", help="A remote Engram server; omit to use this machine's service."),
]
KeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", envvar="ENGRAM_API_KEY", help="API key (needed with --url).", show_default=False),
]
OrgOpt = Annotated[
    str | None, typer.Option("--org", help="Local only, without a key: the organization (name or id) to act in.")
]


@dataclass(frozen=True)
class Target:
    url: str | None = None
    api_key: str | None = None
    org: str | None = None


async def pick_org(db: Database, ref: str | None) -> uuid.UUID:
    """The organization a keyless local command acts in: ``ref``, or the only one there is."""
    if ref is not None:
        found = await keys.find_organizations(db, ref)
        if len(found) != 1:
            raise ConfigurationError(
                f"several organizations match '{ref}'; pass its id (see `engramdb orgs list`)"
                if found
                else f"no organization named or with id '{ref}'; create one with `engramdb init --org NAME`"
            )
        return found[0].id
    every = await keys.list_organizations(db)
    if len(every) == 1:
        return every[0].id
    raise ConfigurationError(
        "there is no organization yet: create one with `engramdb init --org NAME`"
        if not every
        else f"this server has {len(every)} organizations: pass --org NAME (see `engramdb orgs list`)"
    )


@asynccontextmanager
async def open_client(target: Target, *, timeout: float = 300.0) -> AsyncIterator[AsyncClient]:
    if target.url:
        if not target.api_key:
            raise ConfigurationError("--url needs an API key: pass --api-key or set ENGRAM_API_KEY")
        async with AsyncClient(target.url, target.api_key, timeout=timeout) as client:
            yield client
        return
    # This machine's service, in process: the runtime from the composition root (jobs wait for `serve` or
    # `worker`), and the API app over it, driven through the SDK as a remote server would be. A large
    # document is ingested here, in the command (which shows its progress), not left for a worker.
    settings = Settings(document_inline_bytes=limits.MAX_DOCUMENT_BYTES)
    async with bootstrap.running(settings, listen=False) as runtime:
        app = create_app(runtime.settings, runtime=runtime)
        if not target.api_key:
            org_id = await pick_org(runtime.db, target.org)
            app.dependency_overrides[get_caller] = lambda: Caller.operator(org_id, actor="cli")
        transport = StreamingASGITransport(app)
        async with AsyncClient("http://engram.local", target.api_key, transport=transport, timeout=timeout) as client:
            yield client


def listed(target: Target, limit: int, pages: Callable[[AsyncClient, int], AsyncPager[M]]) -> list[M]:
    """The first ``limit`` items of a list call (``pages(client, page_size)``), read in pages of at most the
    API's largest: what every ``… list`` command shows."""
    return run(target, lambda c: pages(c, min(limit, limits.MAX_PAGE_SIZE)).to_list(limit))


def run(target: Target, work: Callable[[AsyncClient], Awaitable[T]]) -> T:
    """Run ``work`` with a client for ``target``; failures become one readable line and an exit code."""

    async def go() -> T:
        try:
            async with open_client(target) as client:
                return await work(client)
        except BaseExceptionGroup as group:  # the app's lifespan runs a task group: report the one cause
            cause: BaseException = group
            while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
                cause = cause.exceptions[0]
            raise cause from None

    try:
        return asyncio.run(go())
    except APIStatusError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    except APIConnectionError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    except ValidationError as exc:  # the SDK checks a body, or a list's filters, before sending it
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors())
        err.print(f"[red]error:[/red] {problems}")
        raise typer.Exit(2) from exc
    except EngramError as exc:
        err.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(2 if isinstance(exc, ConfigurationError) else 1) from exc
    except ValueError as exc:  # an argument the SDK cannot send (an id with a '/', …)
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc

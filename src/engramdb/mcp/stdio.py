"""``engramdb mcp``: the tools over stdio, for desktop clients (Claude Desktop, Cursor, …) that start the
server themselves. One API key for the process (``--api-key`` or ``ENGRAM_API_KEY``), checked at start
and again on every call, so a revoked key stops working at once.

The process enters the same composition root as ``engramdb serve`` (``engramdb.bootstrap``: embedded
PostgreSQL unless a URL is set, migrations, the embedding model, the background worker) but listens on no
socket. Standard output is the
protocol: logs go to standard error, and so does anything written to fd 1 while starting (a child
process such as the embedded PostgreSQL inherits it).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager

from engramdb import bootstrap
from engramdb._version import __version__
from engramdb.config import Settings
from engramdb.mcp.base import Bound, Ctx
from engramdb.mcp.server import build_server
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy import keys

_log = logging.getLogger("engramdb.mcp")


def run_stdio(settings: Settings, api_key: str) -> None:
    """Serve until the client closes stdin. Raises :class:`~engramdb.errors.EngramError` when the key or
    the configuration is refused at start."""
    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    asyncio.run(_serve(settings, api_key))


async def _serve(settings: Settings, api_key: str) -> None:
    async with AsyncExitStack() as stack:
        with _stdout_to_stderr():
            worker = "mcp" if settings.worker_in_serve else None
            runtime = await stack.enter_async_context(bootstrap.running(settings, worker=worker))
            caller = await _authenticate(runtime, api_key)
        _log.info("Engram %s MCP server on stdio for organization %s (%s)", __version__, caller.org_id, caller.actor)

        async def resolve(ctx: Ctx) -> Bound:
            return Bound(runtime, await _authenticate(runtime, api_key))

        await build_server(resolve).run_stdio_async()


async def _authenticate(runtime: Runtime, api_key: str) -> Caller:
    return await keys.authenticate(
        runtime.db,
        api_key,
        request_id=f"mcp:{uuid.uuid4().hex}",
        touch_interval_s=runtime.settings.key_touch_interval_s,
    )


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Point fd 1 at standard error while starting: what the embedded PostgreSQL (which outlives this
    block) or a library prints must not land on the protocol stream."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)

"""The one composition root: ``async with running(settings) as rt`` builds what every entry point needs
and closes it in reverse.

Entering it connects to the database (starting the embedded PostgreSQL when no URL is configured),
applies migrations when ``ENGRAM_AUTO_MIGRATE`` is on, checks the search language, makes sure the vector
index of the configured embedder exists, builds the providers and loads the embedding model; then it
starts the background tasks the process asked for. Leaving it cancels those tasks (each finishes what
it holds: the access tracker flushes, the worker hands its jobs back), closes the providers and disposes
of the database's connections.

A database that goes away is waited for, not given up on: with the embedded server, a supervisor task
starts it again when its postmaster dies (``storage.embedded.supervise``); requests meanwhile answer 503
with ``Retry-After``, the connection pool replaces dead connections on checkout (``pool_pre_ping``), and a
job worker that stops on a database error is started again with backoff. An external database
(``ENGRAM_DATABASE_URL``) is someone else's to restart; Engram reconnects when it is back.

``engramdb serve`` (through ``engramdb.server``), ``engramdb mcp``, ``engramdb worker`` and the local CLI
enter it; no transport builds a runtime of its own or imports another transport to get one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from engramdb.config import Settings
from engramdb.jobs import build_app, run_worker
from engramdb.providers.embedder import Embedder
from engramdb.services.agents import sweep
from engramdb.services.core.runtime import Runtime
from engramdb.services.maintenance import backfill, indexes
from engramdb.storage import embedded
from engramdb.storage.database import Database, resolve_url
from engramdb.storage.migrate import check_language, migrate, prepare_vectors

_log = logging.getLogger("engramdb")
MAX_RESTART_WAIT_S = 30.0


@asynccontextmanager
async def running(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    upkeep: bool = True,
    worker: str | None = None,
    always_migrate: bool = False,
    warm: bool = True,
    listen: bool = True,
) -> AsyncIterator[Runtime]:
    """The runtime of one process, with its background tasks running.

    ``upkeep`` runs the tasks every serving process needs (access tracking, the embedding backfill, the
    per-organization vector indexes); ``worker`` names a job worker to run in this process (None: no
    worker). ``always_migrate`` applies migrations even when ``ENGRAM_AUTO_MIGRATE`` is off (the
    operator commands that exist to bring a database up to date); ``warm`` loads the model before
    returning rather than on the first call; ``listen`` lets the backfill be woken by deferred writes
    (a ``LISTEN`` connection: off for one-shot commands).
    """
    url = await asyncio.to_thread(resolve_url, settings)
    runtime = Runtime.build(settings, Database.connect(settings, url=url), embedder=embedder)
    tasks: list[asyncio.Task[Any]] = []
    try:
        if settings.auto_migrate or always_migrate:
            await asyncio.to_thread(migrate, url)
        await asyncio.to_thread(check_language, url, settings.search_language)
        await asyncio.to_thread(prepare_vectors, url, runtime.embedder.model, runtime.embedder.dimensions)
        if warm:
            await runtime.warm()
        background: dict[str, Coroutine[Any, Any, Any]] = {}
        if settings.embedded:
            background["engram-embedded-postgres"] = embedded.supervise(settings.data_dir)
        if upkeep:
            background["engram-access-tracking"] = runtime.access.run()
            background["engram-embedding-backfill"] = backfill.run(runtime, woken=listen)
            background["engram-org-vector-indexes"] = indexes.run(runtime)
            background["engram-agent-sweep"] = sweep.run(runtime)
        if worker is not None:
            background["engram-job-worker"] = _restarting("the job worker", _jobs(url, runtime, worker))
        tasks = [asyncio.create_task(work, name=name) for name, work in background.items()]
        yield runtime
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runtime.close()
        await runtime.db.dispose()


def _jobs(url: str, runtime: Runtime, name: str) -> Callable[[], Coroutine[Any, Any, None]]:
    """A job worker on a queue app of its own each time it is started."""

    async def start() -> None:
        app = build_app(url, runtime.settings)
        try:
            await run_worker(app, runtime, name=name)
        finally:
            # A pool cut off while opening (the worker cancelled at once, or the database gone) is left
            # open by procrastinate; its tasks then kept the process from exiting (`serve` on a busy port).
            with contextlib.suppress(Exception):
                await app.close_async()

    return start


async def _restarting(what: str, start: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Run ``start()`` until cancelled: when it stops, start it again after 1, 2, 4 … at most 30 s (back to
    1 s once it has run for a minute). A job worker stops when the database goes away under it: with an
    error, or quietly (procrastinate ends a worker whose LISTEN connection failed)."""
    loop = asyncio.get_running_loop()
    wait = 1.0
    while True:
        began = loop.time()
        try:
            await start()
            _log.error("%s stopped; starting it again in %.0f s", what, wait)
        except Exception as exc:
            _log.error("%s stopped (%s); starting it again in %.0f s", what, exc, wait)
        await asyncio.sleep(wait)
        wait = 1.0 if loop.time() - began > 60 else min(wait * 2, MAX_RESTART_WAIT_S)


async def work(settings: Settings, *, name: str) -> None:
    """``engramdb worker``: run jobs in this process until cancelled (migrating first, as a worker may be
    the first process to reach a new database)."""
    async with running(settings, upkeep=False, always_migrate=True) as runtime:
        await _restarting("the job worker", _jobs(runtime.db.url, runtime, name))

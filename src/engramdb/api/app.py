"""The ASGI application: ``create_app(settings)`` builds it; nothing happens at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.routing import Route

from engramdb import __version__, limits
from engramdb.api import problems
from engramdb.api.middleware import RequestContext
from engramdb.api.routes import (
    audit,
    directory,
    documents,
    export,
    health,
    intelligence,
    keys,
    memories,
    search,
    sessions,
    webhooks,
)
from engramdb.config import Settings
from engramdb.jobs import build_app, run_worker
from engramdb.mcp.http import McpEndpoint
from engramdb.providers.embedder import Embedder
from engramdb.schemas.common import Problem
from engramdb.services.core.runtime import Runtime
from engramdb.services.maintenance import backfill, indexes
from engramdb.storage.database import Database, resolve_url
from engramdb.storage.migrate import check_language, migrate, prepare_vectors

_log = logging.getLogger("engramdb")

_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {**_PROBLEM, "description": desc}
    for code, desc in (
        (400, "Malformed request"),
        (401, "Missing or invalid API key"),
        (403, "Scope or binding forbids it"),
        (404, "Not found in your organization"),
        (409, "Conflicts with current state"),
        (413, "Body too large"),
        (415, "Unsupported content: binary, or not a kind Engram reads"),
        (422, "Validation failed"),
    )
}

DESCRIPTION = """Long-term memory for AI agents: sessions and messages, memories with history, scoped per
organization, team, user and agent. Authenticate with `Authorization: Bearer <API key>`; errors are
RFC 9457 `application/problem+json`; lists are cursor-paginated (`next_cursor`)."""


def create_app(settings: Settings, *, db: Database | None = None, embedder: Embedder | None = None) -> FastAPI:
    """Build the app. Without ``db`` the lifespan connects (starting the embedded Postgres if no URL is
    configured), applies migrations when ``auto_migrate`` is on, makes sure the vector index of the
    configured embedder exists, and loads the model before the first request."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The MCP endpoint's session manager runs inside the runtime's lifetime, with or without a ``db``.
        async with runtime_lifespan(app), mcp_endpoint.running():
            yield

    @asynccontextmanager
    async def runtime_lifespan(app: FastAPI) -> AsyncIterator[None]:
        if db is not None:
            yield
            return
        url = await asyncio.to_thread(resolve_url, settings)
        runtime = Runtime.build(settings, Database.connect(settings, url=url), embedder=embedder)
        if settings.auto_migrate:
            await asyncio.to_thread(migrate, url)
        await asyncio.to_thread(check_language, url, settings.search_language)
        await asyncio.to_thread(prepare_vectors, url, runtime.embedder.model, runtime.embedder.dimensions)
        await runtime.warm()
        app.state.db = runtime.db
        app.state.runtime = runtime
        tasks = [
            asyncio.create_task(runtime.access.run(), name="engram-access-tracking"),
            asyncio.create_task(backfill.run(runtime), name="engram-embedding-backfill"),
            asyncio.create_task(indexes.run(runtime), name="engram-org-vector-indexes"),
        ]
        if settings.worker_in_serve:
            worker = run_worker(build_app(url, settings), runtime, name="serve")
            tasks.append(asyncio.create_task(worker, name="engram-job-worker"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await runtime.close()
            await runtime.db.dispose()

    app = FastAPI(
        title="Engram",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.settings = settings
    if db is not None:
        app.state.db = db
        app.state.runtime = Runtime.build(settings, db, embedder=embedder)
    problems.install(app)
    v1 = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
    for router in (
        health.router,
        directory.teams,
        directory.users,
        directory.agents,
        directory.apps,
        keys.router,
        sessions.router,
        memories.router,
        search.router,
        intelligence.context_router,
        intelligence.facts_router,
        intelligence.graph_router,
        intelligence.categories_router,
        intelligence.narratives_router,
        intelligence.jobs_router,
        documents.documents_router,
        documents.repositories_router,
        documents.tags_router,
        audit.router,
        webhooks.router,
        export.router,
    ):
        v1.include_router(router)
    app.include_router(v1)
    mcp_endpoint = McpEndpoint(lambda: app.state.runtime)  # MCP over streamable HTTP (engramdb.mcp.http)
    app.router.routes.append(Route("/mcp", endpoint=mcp_endpoint, name="mcp", include_in_schema=False))
    # An import streams into its service, which holds it to its own limit; every other body is read here.
    streamed = {"/v1/import": limits.MAX_IMPORT_BYTES}
    app.add_middleware(RequestContext, max_bytes=settings.max_request_bytes, streamed=streamed)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (used by ``engramdb serve``): settings from the environment."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(settings)

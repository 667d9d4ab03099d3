"""The ASGI application: ``create_app(settings)`` builds it; nothing happens at import."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from engramdb import bootstrap, limits
from engramdb._version import __version__
from engramdb.api import metrics, params, problems, tracing
from engramdb.api.admission import Admission
from engramdb.api.idempotency import Idempotency
from engramdb.api.middleware import RequestContext
from engramdb.api.routes import (
    agents,
    contexts,
    conversation,
    core,
    distill,
    document,
    governance,
    graph,
    health,
    insights,
    memory,
    search,
    tenancy,
    webhooks,
)
from engramdb.config import Settings
from engramdb.providers.embedder import Embedder
from engramdb.schemas.common import Problem
from engramdb.services.core.runtime import Runtime
from engramdb.storage.database import Database

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
        (429, "A rate limit is used up: retry after Retry-After seconds"),
        (503, "Overloaded or the database unavailable: retry after Retry-After seconds"),
    )
}


def _errors_as_problems(app: FastAPI) -> None:
    """FastAPI files an error response's model under ``application/json``; Engram answers those with
    ``application/problem+json``, so the document names that media type with the Problem schema (and only it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for operations in build()["paths"].values():
                for operation in operations.values():
                    for response in operation.get("responses", {}).values():
                        content = response.get("content", {})
                        if "application/problem+json" in content and "application/json" in content:
                            content["application/problem+json"] = content.pop("application/json")
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


# The routers under /v1, in the order they are matched.
V1_ROUTERS = (
    health.router,
    tenancy.teams,
    tenancy.users,
    tenancy.agents,
    tenancy.apps,
    tenancy.keys_router,
    tenancy.limits_router,
    conversation.router,
    memory.memories_router,
    memory.accesses_router,
    memory.decay_router,
    search.search_router,
    search.context_router,
    graph.facts_router,
    graph.graph_router,
    graph.predicates_router,
    memory.categories_router,
    distill.narratives_router,
    core.jobs_router,
    document.documents_router,
    document.repositories_router,
    contexts.router,
    memory.tags_router,
    core.audit_router,
    webhooks.router,
    governance.router,
    governance.retention_router,
    governance.holds_router,
    governance.grants_router,
    agents.agents_router,
    agents.messages_router,
    agents.tasks_router,
    tenancy.organization_router,
    insights.router,
)


DESCRIPTION = """Long-term memory for AI agents: sessions and messages, memories with history, scoped per
organization, team, user and agent. Authenticate with `Authorization: Bearer <API key>`; errors are
RFC 9457 `application/problem+json`; lists are cursor-paginated (`next_cursor`)."""


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    embedder: Embedder | None = None,
    runtime: Runtime | None = None,
) -> FastAPI:
    """Build the REST API. Without ``db`` its lifespan enters the composition root (``engramdb.bootstrap``):
    the database, migrations, the model, the background tasks and, with ``ENGRAM_WORKER_IN_SERVE``, a job
    worker. With ``db`` (tests, an embedding application) the runtime is built at once over that
    database, and with ``runtime`` (the local CLI, which entered the root itself) that one is used; in
    both cases the lifespan starts nothing.

    ``app.state.lifespan_hooks`` holds what something mounted on the app (the MCP endpoint, see
    ``engramdb.server``) needs running for the app's lifetime; each is entered after the runtime."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if not hasattr(app.state, "runtime"):
                worker = "serve" if settings.worker_in_serve else None
                started = await stack.enter_async_context(bootstrap.running(settings, embedder=embedder, worker=worker))
                app.state.db = started.db
                app.state.runtime = started
            for hook in app.state.lifespan_hooks:
                await stack.enter_async_context(hook())
            yield

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
    app.state.lifespan_hooks = []
    if runtime is None and db is not None:
        runtime = Runtime.build(settings, db, embedder=embedder)
    if runtime is not None:
        app.state.db = runtime.db
        app.state.runtime = runtime
    problems.install(app)
    # Every route under /v1 refuses a query parameter it does not declare (422 naming it).
    v1 = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, dependencies=[Depends(params.refuse_unknown)])
    for router in V1_ROUTERS:
        v1.include_router(router)
    app.include_router(v1)
    _errors_as_problems(app)
    # An import streams into its service, which holds it to its own limit; every other body is read here.
    # An offload too: its route holds the content to MAX_CONTEXT_BYTES (over the default request limit).
    streamed = {"/v1/import": limits.MAX_IMPORT_BYTES, "/v1/contexts": limits.MAX_CONTEXT_REQUEST_BYTES}
    app.add_middleware(Idempotency, skip=streamed)  # inside the size check: it reads the body the check let in
    # Outside Idempotency: a refused request claims no key.
    app.add_middleware(Admission, settings=settings, streamed=streamed)
    app.add_middleware(RequestContext, max_bytes=settings.max_request_bytes, streamed=streamed)
    # Outermost: every answer is counted, the middleware's too.
    app.add_middleware(metrics.RequestMetrics, templates=metrics.templates(v1.prefix, V1_ROUTERS))
    metrics.install(app)
    tracing.install(app, settings)  # only with ENGRAM_OTEL_ENDPOINT
    return app

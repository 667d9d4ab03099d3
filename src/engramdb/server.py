"""What ``engramdb serve`` runs: one ASGI app with the REST API under ``/v1``, the MCP tools over
streamable HTTP at ``/mcp`` and the web dashboard at ``/ui``, sharing one runtime from the composition root
(``engramdb.bootstrap``).

The transports stay apart (the API knows nothing of MCP); this module is where they are put together.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.routing import Mount, Route

from engramdb.api import logs
from engramdb.api.app import create_app as create_api
from engramdb.config import Settings
from engramdb.mcp.http import McpEndpoint
from engramdb.providers.embedder import Embedder
from engramdb.storage.database import Database
from engramdb.web import Dashboard


def create_app(settings: Settings, *, db: Database | None = None, embedder: Embedder | None = None) -> FastAPI:
    """The API with ``/mcp`` and the dashboard (``/ui``) mounted; the MCP endpoint's session manager runs for
    the app's lifetime. The server's loggers redact secrets (``engramdb.api.logs``) from here on."""
    logs.install()
    app = create_api(settings, db=db, embedder=embedder)
    endpoint = McpEndpoint(lambda: app.state.runtime)
    app.router.routes.append(Route("/mcp", endpoint=endpoint, name="mcp", include_in_schema=False))
    # A person who opens the server's address in a browser lands on the dashboard (the API docs stay at /docs).
    dashboard = Dashboard(lambda: app.state.runtime, settings)
    app.router.routes.append(Mount("/ui", routes=dashboard.routes(), name="ui"))
    app.router.routes.append(Route("/", endpoint=dashboard.home, name="home", include_in_schema=False))
    app.state.lifespan_hooks.append(endpoint.running)
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (used by ``engramdb serve``): settings from the environment."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(settings)

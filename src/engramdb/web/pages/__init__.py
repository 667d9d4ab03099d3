"""The dashboard's pages, one module per group, each a :class:`~engramdb.web.view.Pages` table of routes
(paths relative to ``/ui``). Handlers call the same service operations as the API's routes, with the
same filter models, and never read a table themselves."""

from __future__ import annotations

from engramdb.web.pages import (
    agents,
    governance,
    knowledge,
    library,
    memories,
    operations,
    overview,
    people,
    playground,
)
from engramdb.web.pages.overview import not_found
from engramdb.web.view import Route

ROUTES: list[Route] = [
    route
    for group in (overview, people, memories, knowledge, playground, library, operations, agents, governance)
    for route in group.pages.routes
]

__all__ = ["ROUTES", "not_found"]

"""One MCP server with Engram's tools, whichever transport carries it.

A tool call is a request like a REST one: before the tool runs, it is counted against its API key's and
its organization's rate limits (``services.tenancy.quotas``, the counters the API's admission moves), in
the class of the route that does the same work. A refused call is an error result the model can read
(``Error executing tool search: Too many requests (429): … retry after N s``), not a protocol error.
Listing the tools is not counted.
"""

from __future__ import annotations

import inspect
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations

from engramdb._version import __version__
from engramdb.errors import EngramError
from engramdb.mcp.base import Resolver, describe
from engramdb.mcp.tools import CATALOGUE, ToolKind, Tools
from engramdb.schemas.limits import RouteClass
from engramdb.services.tenancy import quotas

INSTRUCTIONS = """Engram is your long-term memory: what users told you in earlier conversations, what you
learnt about them (memories and bi-temporal facts), the people, places and things they mentioned (a
knowledge graph) and the documents stored for you.

- Before answering anything that depends on the user's past, preferences or earlier conversations, call
  search (or get_context for a ready-made block to ground your answer in).
- When the user tells you something worth remembering, call add_memory with one self-contained sentence,
  or add_messages with the turns of the conversation (Engram extracts memories from them by itself).
- When a memory turns out wrong, delete_memory it and add the right one.
- When a long transcript, scratchpad or tool output no longer fits your window, offload_context it; find
  it later with search (types: ["contexts"]) and bring it back with restore_context.
- With an API key bound to a user, everything is that user's memory: leave the user arguments out.
  With an organization-wide key, name the user with external_user_id (your application's id for them)."""

_HINTS: dict[ToolKind, ToolAnnotations] = {
    "read": ToolAnnotations(read_only_hint=True, open_world_hint=False),
    "write": ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
    "delete": ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False),
}


# The rate-limit class of a tool: its kind's, as a REST route's is its method's, but for the tools whose
# routes are special in ``api/admission.py`` (the searches, and the one that queues an extraction).
SPECIAL_CLASSES: dict[str, RouteClass] = {
    "search": "searches",
    "get_context": "searches",
    "search_documents": "searches",
    "add_messages": "extraction",
}
_KIND_CLASSES: dict[ToolKind, RouteClass] = {"read": "reads", "write": "writes", "delete": "writes"}
ROUTE_CLASSES: dict[str, RouteClass] = {
    name: SPECIAL_CLASSES.get(name, _KIND_CLASSES[kind]) for name, kind in CATALOGUE
}


class _LimitedServer(MCPServer[Any]):
    """The SDK's server, counting each tool call before it runs."""

    def __init__(self, resolve: Resolver, **options: Any) -> None:
        super().__init__("engram", **options)
        self._resolve = resolve

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        route_class = ROUTE_CLASSES.get(name)
        if route_class is not None and context is not None:
            try:
                bound = await self._resolve(context)
                settings = bound.runtime.settings
                decision = await quotas.hit(bound.runtime.db, bound.caller, route_class, settings)
                if decision is not None and not decision.allowed:
                    raise quotas.refusal(decision, route_class, settings)
            except EngramError as exc:  # worded as the SDK words a tool's own refusals
                raise ToolError(f"Error executing tool {name}: {describe(exc)}") from exc
        return await super().call_tool(name, arguments, context)


def build_server(resolve: Resolver) -> MCPServer[Any]:
    """Engram's tools, each run as the caller ``resolve`` finds for the call."""
    # log_level: the SDK calls logging.basicConfig; it is a no-op once the process has set up logging.
    server = _LimitedServer(
        resolve, title="Engram", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    tools = Tools(resolve)
    for name, kind in CATALOGUE:
        fn = getattr(tools, name)
        server.add_tool(fn, name=name, description=inspect.getdoc(fn), annotations=_HINTS[kind])
    return server

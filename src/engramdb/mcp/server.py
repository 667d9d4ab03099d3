"""One MCP server with Engram's tools, whichever transport carries it."""

from __future__ import annotations

import inspect
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from engramdb._version import __version__
from engramdb.mcp.base import Resolver
from engramdb.mcp.tools import CATALOGUE, ToolKind, Tools

INSTRUCTIONS = """Engram is your long-term memory: what users told you in earlier conversations, what you
learnt about them (memories and bi-temporal facts), the people, places and things they mentioned (a
knowledge graph) and the documents stored for you.

- Before answering anything that depends on the user's past, preferences or earlier conversations, call
  search (or get_context for a ready-made block to ground your answer in).
- When the user tells you something worth remembering, call add_memory with one self-contained sentence,
  or add_messages with the turns of the conversation (Engram extracts memories from them by itself).
- When a memory turns out wrong, delete_memory it and add the right one.
- With an API key bound to a user, everything is that user's memory: leave the user arguments out.
  With an organization-wide key, name the user with external_user_id (your application's id for them)."""

_HINTS: dict[ToolKind, ToolAnnotations] = {
    "read": ToolAnnotations(read_only_hint=True, open_world_hint=False),
    "write": ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False),
    "delete": ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False),
}


def build_server(resolve: Resolver) -> MCPServer[Any]:
    """Engram's tools, each run as the caller ``resolve`` finds for the call."""
    # log_level: the SDK calls logging.basicConfig; it is a no-op once the process has set up logging.
    server: MCPServer[Any] = MCPServer(
        "engram", title="Engram", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    tools = Tools(resolve)
    for name, kind in CATALOGUE:
        fn = getattr(tools, name)
        server.add_tool(fn, name=name, description=inspect.getdoc(fn), annotations=_HINTS[kind])
    return server

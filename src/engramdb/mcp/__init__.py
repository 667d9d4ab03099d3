"""The MCP server: Engram's memory as tools for any Model Context Protocol client.

A transport, thin over the services like the REST routes: every tool calls the service function its
route calls, as the :class:`~engramdb.services.core.caller.Caller` its API key resolves to, so tenancy,
scopes and user-bound keys behave exactly as in the REST API.

- ``engramdb.mcp.server``: the tools' registration and the shared plumbing (caller, errors, results).
- ``engramdb.mcp.tools``: the tools themselves.
- ``engramdb.mcp.http``: streamable HTTP, mounted on the API at ``/mcp`` (a Bearer key per request).
- ``engramdb.mcp.stdio``: ``engramdb mcp``, one key for the process (desktop clients).

Nothing is imported here: the name ``engramdb.mcp`` must never stand in for the ``mcp`` SDK, and the
API imports ``engramdb.mcp.http`` while ``engramdb.mcp.stdio`` imports the API.
"""

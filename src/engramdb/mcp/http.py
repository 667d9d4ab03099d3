"""Streamable HTTP at ``/mcp`` on the API server: every request carries ``Authorization: Bearer egm_…``.

The key is resolved to its caller on each request, before the MCP SDK sees it (a missing or bad key is
the API's 401 problem+json), and the caller travels with that request only, in its ASGI scope, to the
tools it calls. The server is stateless and answers in JSON: no MCP session outlives a request, so
nothing ties one request's caller to another's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from engramdb.errors import ServiceUnavailable, Unauthenticated
from engramdb.mcp.base import Bound, Ctx
from engramdb.mcp.server import build_server
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy import keys

_SCOPE_KEY = "engramdb.mcp.bound"  # where a request's resolved caller rides, in its ASGI scope


async def _from_request(ctx: Ctx) -> Bound:
    scope = getattr(ctx.request_context.request, "scope", None) or {}
    bound = scope.get(_SCOPE_KEY)
    if not isinstance(bound, Bound):  # only if the endpoint below was bypassed: refuse rather than guess
        raise ToolError("Authentication required (401): this request carries no API key")
    return bound


class McpEndpoint:
    """The ASGI app behind ``/mcp``. ``runtime`` gives the app's services once its lifespan has started;
    :meth:`running` must wrap the app's lifespan (the SDK's session manager runs for that long)."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime
        self.server = build_server(_from_request)
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # A session manager runs once: each lifespan gets a new one. DNS-rebinding protection is off: it
        # guards servers that trust ambient credentials, and every request here must bring its own key.
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = self.server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._manager
        if manager is None:
            raise ServiceUnavailable("the MCP endpoint is not running yet: the server is still starting")
        runtime = self._runtime()
        scope[_SCOPE_KEY] = Bound(runtime, await _authenticate(runtime, scope))
        await manager.handle_request(scope, receive, send)


async def _authenticate(runtime: Runtime, scope: Scope) -> Caller:
    """The caller of this request's key; raises 401 (rendered by the API as problem+json) without one."""
    header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an API key as 'Authorization: Bearer egm_…' (create one with `engramdb init`)")
    client = scope.get("client")
    return await keys.authenticate(
        runtime.db,
        token.strip(),
        request_id=scope.get("state", {}).get("request_id"),
        client_addr=client[0] if client else None,
        touch_interval_s=runtime.settings.key_touch_interval_s,
    )

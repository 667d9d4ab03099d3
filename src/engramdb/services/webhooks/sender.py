"""The webhook client: one per worker process, pooled, with one TLS context, connecting only to checked
addresses.

Building an ``httpx.AsyncClient`` per delivery loaded the CA bundle into a new ``ssl.SSLContext`` each
time: 36 ms of CPU per delivery (``load_verify_locations``), a full core on a backlog. A :class:`Sender`
is opened by the worker (``engramdb.jobs.worker.run_worker``) and closed when it stops; its connections
are kept alive between deliveries to the same receiver.

Every connection is opened by :class:`CheckedBackend`, which resolves the URL's host at that moment,
checks every address (``destinations.resolve``) and connects to one of them. The URL keeps its host
name, so the Host header, the TLS server name and the certificate check are the original host's, and
the pool files the connection under that name: a connection verified for one name is never reused for
another name that resolves to the same address (which rewriting the URL to the address would allow).
"""

from __future__ import annotations

import ssl
import types
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from engramdb.config import Settings
from engramdb.services.webhooks.destinations import Policy, resolve


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend that resolves and checks the host itself before connecting."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(self._policy, host, port)
        except OSError as exc:  # not resolved: a network error like any other, retried
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None, "resolve returns at least one address"
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are not sent over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Transport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool whose connections are opened by :class:`CheckedBackend`. httpx takes
    no network backend, so its pool is replaced: ``_pool`` is the one private name used here (a test
    fails if a new httpx stops sending through it)."""

    def __init__(self, policy: Policy, ssl_context: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(policy),
        )


class Sender:
    """The pooled client of one worker process. ``async with Sender(settings) as sender``; ``ssl_context``
    replaces the default trust store (tests)."""

    def __init__(self, settings: Settings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.policy = Policy.of(settings)
        context = ssl_context or httpx.create_ssl_context()  # the CA bundle, loaded once
        lanes = settings.webhook_concurrency
        limits = httpx.Limits(max_connections=lanes * 2, max_keepalive_connections=lanes, keepalive_expiry=30)
        self.client = httpx.AsyncClient(
            transport=_Transport(self.policy, context, limits),
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
            trust_env=False,  # no proxy: the request goes to the address that was checked
        )

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()

"""The HTTP machinery every namespace calls through: requests with retries, streamed answers, problem+json
errors. ``AsyncClient`` (``client.py``) adds the namespaces on top; resources and pagers are typed against
this class, so they need not import the client that builds them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from engramdb.sdk import _common as c
from engramdb.sdk.errors import APIConnectionError, APITimeoutError, error_for

T = TypeVar("T", bound=BaseModel)


class AsyncHTTP:
    """A connection to an Engram server: base URL, key, timeouts and retries (see ``AsyncClient``)."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = c.DEFAULT_TIMEOUT_S,
        max_retries: int = c.DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = c.resolve_url(base_url if http_client is None else base_url or str(http_client.base_url))
        self.max_retries = max_retries
        self._owns_http = http_client is None
        # A client of your own keeps its settings; the key and headers given here go on every call.
        self._headers = {} if http_client is None else c.default_headers(c.resolve_key(api_key), headers)
        self._http = http_client or httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers=c.default_headers(c.resolve_key(api_key), headers),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | AsyncIterable[bytes] | None = None,  # an iterable (not a generator) may be re-sent
        files: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,  # seconds, an httpx.Timeout, or the client's own
    ) -> httpx.Response:
        """Send one call, retrying as the class says; an error status raises its ``APIStatusError``.

        A ``POST`` that is not safe to repeat by itself (a create) carries an ``Idempotency-Key``, the same
        on every retry of this call, so the server does it once: such a call is then retried like any
        other. A call marked ``idempotent=False`` is never repeated."""
        sent_headers = {**self._headers, **(headers or {})}
        if method == "POST" and idempotent is None:
            if not any(name.lower() == "idempotency-key" for name in sent_headers):
                sent_headers["Idempotency-Key"] = uuid.uuid4().hex
            if files is not None and not any(name.lower() == "content-type" for name in sent_headers):
                # One boundary for every attempt: the server knows a retry by its bytes.
                sent_headers["Content-Type"] = f"multipart/form-data; boundary={uuid.uuid4().hex}"
            idempotent = True
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=c.query(params or {}),
                    json=json,
                    content=content,
                    files=files,
                    data=data,
                    headers=sent_headers,
                    timeout=timeout,
                )
            except httpx.TimeoutException as exc:
                if c.should_retry(method, None, attempt=attempt, max_retries=self.max_retries, idempotent=idempotent):
                    attempt += 1
                    await asyncio.sleep(c.backoff_s(attempt, None))
                    continue
                raise APITimeoutError(f"no answer from {self.base_url} in time: {exc}", request=exc.request) from exc
            except httpx.TransportError as exc:
                if c.should_retry(method, None, attempt=attempt, max_retries=self.max_retries, idempotent=idempotent):
                    attempt += 1
                    await asyncio.sleep(c.backoff_s(attempt, None))
                    continue
                raise APIConnectionError(
                    f"cannot reach Engram at {self.base_url} ({exc}); is `engramdb serve` running?"
                ) from exc
            if response.status_code < 400:
                return response
            status = response.status_code
            if c.should_retry(method, status, attempt=attempt, max_retries=self.max_retries, idempotent=idempotent):
                attempt += 1
                await asyncio.sleep(c.backoff_s(attempt, response))
                continue
            raise error_for(response)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> AsyncIterator[httpx.Response]:
        """A response read as it arrives (an export, a live stream); not retried, since part of it may be
        consumed."""
        try:
            query = c.query(params or {})
            sent = {**self._headers, **(headers or {})}
            async with self._http.stream(method, path, params=query, headers=sent, timeout=timeout) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for(response)
                yield response
        except httpx.TimeoutException as exc:
            raise APITimeoutError(f"no answer from {self.base_url} in time: {exc}", request=exc.request) from exc
        except httpx.TransportError as exc:
            raise APIConnectionError(f"the connection to Engram at {self.base_url} broke: {exc}") from exc

    async def call(self, model: type[T], method: str, path: str, **kwargs: Any) -> T:
        """``request`` and parse the answer as ``model``."""
        return c.parse(model, await self.request(method, path, **kwargs))

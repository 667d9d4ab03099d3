"""``Idempotency-Key`` on POST: the same key and the same request replay the first answer; the same key
with another request is a 422; a key whose first request is still running is a 409 with Retry-After.

A pure ASGI middleware, inside the request-size check: it needs the whole body (to tell a retry from a
different request) and the whole answer (to keep it), which a route does not see. The organization comes
from the request's own API key (a key that does not authenticate is left to the route, which answers
401). Imports (``/v1/import``) stream past the request-size limit and are idempotent by design: they are
not held here. What is kept and for how long: ``engramdb.services.core.idempotency``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engramdb import limits
from engramdb.api.problems import MEDIA_TYPE, PROBLEM_BASE, RETRY_AFTER_S, send_problem
from engramdb.errors import EngramError, ServiceUnavailable
from engramdb.services.core import idempotency
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy import keys
from engramdb.storage.database import pool_wait

HEADER = b"idempotency-key"
_KEY = re.compile(rf"^[\x21-\x7e]{{1,{limits.MAX_IDEMPOTENCY_KEY_CHARS}}}$")


class Idempotency:
    def __init__(self, app: ASGIApp, *, skip: Collection[str] = ()) -> None:
        self.app = app
        self.skip = frozenset(skip)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("path") in self.skip:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_key = headers.get(HEADER)
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = raw_key.decode("latin-1")
        if not _KEY.match(key):
            detail = f"Idempotency-Key must be 1 to {limits.MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters"
            await _problem(scope, send, 400, "invalid-request", "Invalid request", detail)
            return
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
        admitted = scope.get("state", {}).get("caller")  # authenticated by api.admission already
        org_id = admitted.org_id if admitted is not None else await _org(runtime, headers)
        if runtime is None or org_id is None:  # not authenticated: the route answers 401
            await self.app(scope, receive, send)
            return
        body, replay = await _read(receive)
        digest = hashlib.sha256()
        for part in (scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body):
            digest.update(len(part).to_bytes(8, "big") + part)
        window = runtime.settings.idempotency_window_s
        try:
            claimed = await idempotency.claim(runtime.db, org_id, key, digest.digest(), window_s=window)
        except ServiceUnavailable as exc:  # overloaded or the database away: a 503 to retry, never a 500
            retry_after = str(getattr(exc, "retry_after_s", RETRY_AFTER_S))
            await send_problem(scope, send, exc, headers={"Retry-After": retry_after})
            return
        if claimed.outcome == "replay":
            await _replay(send, claimed)
            return
        if claimed.outcome == "mismatch":
            detail = "this Idempotency-Key was sent before with another request: use a new key for a new request"
            await _problem(scope, send, 422, "idempotency-key-reused", "Idempotency key reused", detail)
            return
        if claimed.outcome == "busy":
            detail = "the first request with this Idempotency-Key is still running: retry after it has finished"
            await _problem(scope, send, 409, "idempotency-key-in-use", "Request in progress", detail, retry_after=1)
            return
        await self._run(scope, replay, send, runtime, org_id, key)

    async def _run(self, scope: Scope, receive: Receive, send: Send, runtime: Runtime, org_id: Any, key: str) -> None:
        status = 500
        content_type: str | None = None
        chunks: list[bytes] = []
        size = 0

        async def keep(message: Message) -> None:
            nonlocal status, content_type, size
            if message["type"] == "http.response.start":
                status = message["status"]
                found = dict(message.get("headers", [])).get(b"content-type")
                content_type = found.decode("latin-1") if found else None
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
                if size <= limits.MAX_IDEMPOTENT_RESPONSE_BYTES:
                    chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, keep)
        except BaseException:
            with pool_wait(None):
                await idempotency.release(runtime.db, org_id, key)
            raise
        # The answer is sent: keeping it may wait for a connection like background work (no client waits).
        with pool_wait(None):
            if status >= 500 or size > limits.MAX_IDEMPOTENT_RESPONSE_BYTES:
                await idempotency.release(runtime.db, org_id, key)  # a retry runs it again
                return
            await idempotency.finish(
                runtime.db, org_id, key, status_code=status, content_type=content_type, body=b"".join(chunks)
            )


async def _org(runtime: Runtime | None, headers: dict[bytes, bytes]) -> Any:
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if runtime is None or scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        caller = await keys.authenticate(
            runtime.db, token.strip(), touch_interval_s=runtime.settings.key_touch_interval_s
        )
    except EngramError:
        return None
    return caller.org_id


async def _read(receive: Receive) -> tuple[bytes, Receive]:
    body = bytearray()
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}
        return await receive()

    return bytes(body), replay


async def _replay(send: Send, claimed: idempotency.Claim) -> None:
    body = claimed.body or b""
    headers = [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
    if claimed.content_type:
        headers.append((b"content-type", claimed.content_type.encode("latin-1")))
    await send({"type": "http.response.start", "status": claimed.status_code or 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _problem(
    scope: Scope, send: Send, status: int, slug: str, title: str, detail: str, *, retry_after: int | None = None
) -> None:
    request_id = scope.get("state", {}).get("request_id")
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    body |= {"instance": scope.get("path"), "request_id": request_id}
    payload = json.dumps(body).encode()
    headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(payload)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})

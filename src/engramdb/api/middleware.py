"""Pure ASGI middleware: a request id on every request and response, and the request-size limit."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engramdb.api.problems import MEDIA_TYPE, PROBLEM_BASE
from engramdb.errors import PayloadTooLarge

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContext:
    """Sets ``request.state.request_id`` (from a sane ``X-Request-ID`` or a new one) and echoes it back.

    Reads the body before the app does and answers 413 when it is over ``max_bytes``, whether the
    client declared its length or streamed it, so oversized input never reaches a route. The paths in
    ``streamed`` (an import) are passed on unread, each with its own larger limit, which their route
    enforces again as the body streams in."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, streamed: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = dict(streamed or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw: list[Any] = list(message.get("headers", []))
                raw.append((b"x-request-id", request_id.encode()))
                message["headers"] = raw
            await send(message)

        declared = headers.get("content-length", "")
        own_limit = self.streamed.get(scope.get("path", ""))
        if declared.isdigit() and int(declared) > (own_limit or self.max_bytes):
            await self._too_large(scope, send_with_id, request_id, own_limit or self.max_bytes)
            return
        if own_limit is not None:
            await self.app(scope, receive, send_with_id)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._too_large(scope, send_with_id, request_id, self.max_bytes)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_id)

    async def _too_large(self, scope: Scope, send: Send, request_id: str, limit: int) -> None:
        payload = json.dumps(
            {
                "type": PROBLEM_BASE + PayloadTooLarge.slug,
                "title": PayloadTooLarge.title,
                "status": 413,
                "detail": f"the request body is over the {limit}-byte limit"
                + ("" if limit != self.max_bytes else " (ENGRAM_MAX_REQUEST_BYTES)"),
                "instance": scope.get("path"),
                "request_id": request_id,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

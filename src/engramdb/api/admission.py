"""Admission: what a request must pass before the API works on it. A pure ASGI middleware, outside
``Idempotency`` (a refused request claims no idempotency key, so its retry runs for real).

* **Shedding.** Inside a request a database checkout waits at most ``ENGRAM_DB_POOL_WAIT_MS`` for a free
  connection (``storage.database.pool_wait``); past it the request is answered 503 ``overloaded`` with
  ``Retry-After`` at once, instead of queueing behind a saturated pool without bound. The embedder bounds
  the texts waiting for it the same way (``ENGRAM_EMBED_QUEUE_TEXTS``).
* **Turns.** At most ``ENGRAM_MAX_ACTIVE_REQUESTS`` requests (under ``/v1``, and the MCP endpoint's) are
  at work in one process at once (``Turns``); the next waits at most ``ENGRAM_ADMISSION_WAIT_MS`` for its
  turn, first come first served, and is then answered 503 ``overloaded`` with ``Retry-After``, before any
  work of its own (it is counted against its rate limits first: a client over its limit hears 429, not
  503; the MCP endpoint's tools count their calls themselves, inside the request). A request gives its
  turn back when its answer starts, so a stream (Server-Sent Events, a download) holds none while it
  runs, and when it only waits for a job it queued (``wait=true``: ``services.core.turns.step_aside``).
  An offload takes its turn once its body is read, an import none, so a slow sender holds none while it
  sends. This is what keeps accepted requests fast past capacity: the CPU is shared by a bounded number
  of requests instead of every one that arrived.
* **Rate limits.** A request with a valid key under ``/v1`` is counted against its key's and its
  organization's limits of its route class (``services.tenancy.quotas``: one statement), and answered 429
  with ``Retry-After`` when either is used up. Answers a limit applies to carry ``RateLimit-Limit``,
  ``RateLimit-Remaining`` and ``RateLimit-Reset``.

The key is authenticated here, once, on the connection that counts the request (``quotas.admit``: one
checkout of the pool): the caller is left in the request's state for the routes (``deps.get_caller``)
and ``Idempotency``. A key that does not authenticate is passed on; the route answers
401. Health probes are neither authenticated nor counted.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engramdb import metrics
from engramdb.api.problems import RETRY_AFTER_S, rate_limit_headers, send_problem
from engramdb.config import Settings
from engramdb.errors import Overloaded, ServiceUnavailable
from engramdb.schemas.limits import RouteClass
from engramdb.services.core import turns
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy import quotas
from engramdb.storage.database import pool_wait, reading_as

# Operations whose class is not their method's (GET: reads, any other method: writes).
SPECIAL_CLASSES: dict[str, RouteClass] = {
    "search": "searches",
    "assemble_context": "searches",
    "add_messages": "extraction",  # queues an extraction job (counted so whatever its body says)
    "refresh_user_narrative": "extraction",
    "retry_job": "extraction",
    "export_data": "exports",
    "import_data": "exports",
}
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_NOT_WRITES: frozenset[RouteClass] = frozenset({"reads", "searches"})
UNCOUNTED = ("/v1/health",)
MCP = "/mcp"  # the MCP endpoint's tools do what the API's routes do: they take turns too


class RouteClasses:
    """The route class of a request, from its method and path (the special operations' path templates, as
    the OpenAPI document has them)."""

    def __init__(self, paths: Mapping[str, Mapping[str, Any]]) -> None:
        self.special: list[tuple[re.Pattern[str], str, RouteClass]] = [
            (re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"), method.upper(), cls)
            for template, ops in paths.items()
            for method, op in ops.items()
            if (cls := SPECIAL_CLASSES.get(op.get("operationId", ""))) is not None
        ]

    def of(self, method: str, path: str) -> RouteClass:
        for pattern, wanted, cls in self.special:
            if method == wanted and pattern.match(path):
                return cls
        return "reads" if method in _READS else "writes"


def bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return (token.strip() or None) if scheme.lower() == "bearer" else None
    return None


class Turns:
    """At most ``limit`` holders at once; the others wait in arrival order, each at most ``wait_s``.

    One event loop's worth of state (a process serves from one loop), no lock needed: ``take`` and
    ``give_back`` never await between reading and changing it."""

    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self.active = 0
        self._waiting: deque[asyncio.Future[bool]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def take(self) -> bool:
        """Whether a turn was had within ``wait_s`` (then ``give_back`` must follow)."""
        if self.active < self.limit and not self._waiting:
            self.active += 1
            return True
        if self.wait_s <= 0:
            return False
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[bool] = loop.create_future()
        self._waiting.append(turn)
        timer = loop.call_later(self.wait_s, _settle, turn, False)
        try:
            return await turn  # True: handed over by ``give_back``; False: the wait ran out
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.result():  # handed over to a request now gone
                self.give_back()
            raise
        finally:
            timer.cancel()
            if turn in self._waiting:
                self._waiting.remove(turn)

    def give_back(self) -> None:
        """Hand the turn to the longest waiter still waiting, or free it."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(True)  # ``active`` is unchanged: the turn changes hands
                return
        self.active -= 1


def _settle(turn: asyncio.Future[bool], value: bool) -> None:
    if not turn.done():
        turn.set_result(value)


class Admission:
    def __init__(self, app: ASGIApp, *, settings: Settings, streamed: Iterable[str] = ()) -> None:
        self.app = app
        self.settings = settings
        self.streamed = tuple(streamed)  # paths whose body arrives as the route reads it: no turn at the door
        self.wait_s = settings.db_pool_wait_ms / 1000
        self.turns = Turns(settings.active_requests, settings.admission_wait_ms / 1000)
        self._classes: RouteClasses | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with pool_wait(self.wait_s):
            await self._admit(scope, receive, send)

    async def _work(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on to the app, in its turn when it is an API or MCP request. A streamed body
        (an import, an offload) arrives at the sender's pace: such a request is let in without a turn and
        its route takes one once the body is read (``services.core.turns.take``; an import takes none)."""
        path: str = scope.get("path", "")
        gated = path.startswith("/v1/") or path == MCP or path.startswith(MCP + "/")
        if not gated or path.startswith(UNCOUNTED):
            await self.app(scope, receive, send)
            return
        held = False

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.turns.give_back()
                metrics.ACTIVE_REQUESTS.dec()

        async def acquire() -> None:
            nonlocal held
            started = time.perf_counter()
            if not await self.turns.take():
                metrics.OVERLOAD.labels("busy").inc()
                raise Overloaded(
                    f"{self.turns.active} requests are at work and {self.turns.waiting} waiting in this process "
                    f"(ENGRAM_MAX_ACTIVE_REQUESTS is {self.turns.limit}); try again after Retry-After"
                )
            held = True
            metrics.ADMISSION_WAIT.observe(time.perf_counter() - started)
            metrics.ACTIVE_REQUESTS.inc()

        streamed = scope["method"] == "POST" and path in self.streamed
        if not streamed:
            try:
                await acquire()
            except Overloaded as busy:
                await send_problem(scope, send, busy, headers={"Retry-After": str(busy.retry_after_s)})
                return

        async def send_releasing(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()  # the answer is decided: a stream keeps no turn while it runs
            await send(message)

        token = turns.CURRENT.set(turns.Turn(give_back=release, take=acquire if streamed else None))
        try:
            await self.app(scope, receive, send_releasing)
        finally:
            turns.CURRENT.reset(token)
            release()

    async def _admit(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
        token = bearer(scope)
        if runtime is None or token is None or not path.startswith("/v1/") or path.startswith(UNCOUNTED):
            await self._work(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        route_class = self._route_classes(scope).of(scope["method"], path)
        client = scope.get("client")
        try:
            admitted = await quotas.admit(
                runtime.db,
                token,
                route_class,
                runtime.settings,
                request_id=state.get("request_id"),
                client_addr=client[0] if client else None,
            )
        except ServiceUnavailable as exc:  # the pool is saturated or the database away: shed it now
            retry_after = str(getattr(exc, "retry_after_s", RETRY_AFTER_S))
            await send_problem(scope, send, exc, headers={"Retry-After": retry_after})
            return
        if admitted.caller is None:  # the route answers 401, saying why
            await self._work(scope, receive, send)
            return
        state["caller"] = admitted.caller
        caller = admitted.caller
        reader = str(caller.key_id) if caller.key_id is not None else f"org:{caller.org_id}"
        if route_class not in _NOT_WRITES and runtime.db.replica is not None:
            send = _noting_write(runtime, reader, send)
        with reading_as(reader):
            await self._limited(scope, receive, send, runtime, route_class, admitted.decision)

    async def _limited(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        runtime: Runtime,
        route_class: RouteClass,
        decision: quotas.Decision | None,
    ) -> None:
        if decision is None:
            await self._work(scope, receive, send)
            return
        if not decision.allowed:
            error = quotas.refusal(decision, route_class, runtime.settings)
            headers = {
                "Retry-After": str(error.retry_after_s),
                **rate_limit_headers(decision.limit, 0, decision.reset_s),
            }
            await send_problem(scope, send, error, headers=headers)
            return
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in rate_limit_headers(decision.limit, decision.remaining, decision.reset_s).items()
        ]

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self._work(scope, receive, send_with_limits)

    def _route_classes(self, scope: Scope) -> RouteClasses:
        if self._classes is None:
            self._classes = RouteClasses(scope["app"].openapi()["paths"])
        return self._classes


def _noting_write(runtime: Runtime, reader: str, send: Send) -> Send:
    """``send`` that, before the answer to a write request starts, notes the primary's WAL position for
    the caller (``Database.wrote``): its next reads wait for the replica to have replayed the write, or go
    to the primary. Before the answer, so a client that reads on receiving it sees what it wrote."""

    async def noted(message: Message) -> None:
        if message["type"] == "http.response.start":
            await runtime.db.wrote(reader)
        await send(message)

    return noted

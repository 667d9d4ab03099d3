"""``GET /metrics``: Prometheus's text format, for operators. Outside ``/v1`` and the OpenAPI document.

It is served to a loopback client (unless ``ENGRAM_METRICS_LOOPBACK=false``) or to a request with
``Authorization: Bearer <ENGRAM_METRICS_TOKEN>`` (compared in constant time); anyone else gets the same
404 as a path that does not exist, so its existence is not advertised. ``RequestMetrics`` (the outermost
middleware) counts every answer by route template and status, so 413s, 429s and 503s given by the other
middleware are counted too. The series are defined in ``engramdb.metrics``; the job queue and the
database pool are read at scrape time.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from ipaddress import ip_address

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engramdb import metrics
from engramdb.api import problems
from engramdb.config import Settings
from engramdb.errors import EngramError
from engramdb.services.core import readings
from engramdb.services.core.runtime import Runtime
from engramdb.storage.database import pool_wait

_log = logging.getLogger("engramdb.api")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SCRAPE_WAIT_S = 2.0  # for a connection to read the queue: a scrape of a saturated server still answers
UNMATCHED = "<unmatched>"  # the route label of a request no route took (a 404): bounded, never the raw path


class RequestMetrics:
    """Counts each answer and times it, labelled by the route's template (``/v1/memories/{memory_id}``)."""

    def __init__(self, app: ASGIApp, templates: Mapping[int, str] | None = None) -> None:
        self.app = app
        self._templates = templates or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = self._template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
            metrics.HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        """The full path template of the route that answered. A route of an included router knows only its
        part of it (``/documents/{document_id}``), so ``templates`` (from :func:`templates`) gives the whole;
        a route of the app itself has it. (The OpenAPI document has them too, but building it took seconds,
        on the first request of every process and every local CLI command.)"""
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        return self._templates.get(id(route)) or getattr(route, "path", None) or UNMATCHED


def templates(prefix: str, routers: Iterable[APIRouter]) -> dict[int, str]:
    """The full path template of each route of ``routers`` (by the route's identity: a route is not
    hashable, and the routers' routes live as long as the process), included under ``prefix``."""
    return {
        id(route): prefix + route.path for router in routers for route in router.routes if isinstance(route, APIRoute)
    }


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def allowed(request: Request, settings: Settings) -> bool:
    if settings.metrics_loopback and _loopback(request.client.host if request.client else None):
        return True
    token = settings.metrics_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if token is None or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


async def _readings(runtime: Runtime) -> list[GaugeMetricFamily]:
    pool = runtime.db.pool_use()
    found = [
        metrics.gauge(
            "engram_db_pool_size", "Connections this process keeps (ENGRAM_DB_POOL_SIZE).", [({}, pool.size)]
        ),
        metrics.gauge(
            "engram_db_pool_checked_out", "Connections of this process in use now.", [({}, pool.checked_out)]
        ),
        metrics.gauge(
            "engram_db_pool_overflow", "Connections opened beyond the pool's size, now.", [({}, pool.overflow)]
        ),
        metrics.gauge(
            "engram_db_pool_max_overflow",
            "Connections allowed beyond the size (ENGRAM_DB_MAX_OVERFLOW).",
            [({}, pool.max_overflow)],
        ),
    ]
    try:
        with pool_wait(SCRAPE_WAIT_S):
            queue = await readings.queue(runtime.db, stalled_s=runtime.settings.worker_stalled_s)
    except EngramError as exc:  # the database is away: the process's own series still answer
        _log.warning("metrics: the job queue could not be read (%s)", exc.detail)
        return [*found, metrics.gauge("engram_database_up", "Whether the scrape could read the database.", [({}, 0)])]
    lanes = queue.lanes
    found += [
        metrics.gauge("engram_database_up", "Whether the scrape could read the database.", [({}, 1)]),
        metrics.gauge(
            "engram_job_queue_due",
            "Jobs waiting for a worker, by lane (queue).",
            [({"queue": lane.name}, lane.due) for lane in lanes],
        ),
        metrics.gauge(
            "engram_job_queue_scheduled",
            "Job retries waiting for their time, by lane.",
            [({"queue": lane.name}, lane.scheduled) for lane in lanes],
        ),
        metrics.gauge(
            "engram_job_queue_running",
            "Jobs being run now, by lane.",
            [({"queue": lane.name}, lane.running) for lane in lanes],
        ),
        metrics.gauge(
            "engram_job_queue_oldest_due_seconds",
            "How long the oldest due job of the lane has waited for a worker (0: none waits).",
            [({"queue": lane.name}, lane.oldest_due_s) for lane in lanes],
        ),
        metrics.gauge("engram_job_workers", "Job workers with a recent heartbeat.", [({}, queue.workers)]),
    ]
    return found


def install(app: FastAPI) -> None:
    """Add ``GET /metrics`` (not in the OpenAPI document)."""

    async def serve_metrics(request: Request) -> Response:
        settings: Settings = request.app.state.settings
        if not allowed(request, settings):
            return problems.problem(request, 404, "not-found", "Not found", "Not Found")
        runtime: Runtime = request.app.state.runtime
        body = metrics.render(await _readings(runtime))
        return Response(body, media_type=metrics.CONTENT_TYPE)

    app.add_api_route("/metrics", serve_metrics, methods=["GET"], include_in_schema=False, name="metrics")

    @asynccontextmanager
    async def warm() -> AsyncIterator[None]:
        # The rate-limit classes (api/admission.py) come from the OpenAPI document, built on first use in
        # about a second: a server builds it at start-up rather than in its first request.
        app.openapi()
        yield

    app.state.lifespan_hooks.append(warm)

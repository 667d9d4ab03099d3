"""Optional OpenTelemetry tracing: off unless ``ENGRAM_OTEL_ENDPOINT`` names a collector.

Off by default, and then nothing of OpenTelemetry is imported and nothing is sent anywhere. With an
endpoint (and the ``otel`` extra installed: ``pip install 'engramdb[otel]'``) each API process exports
its spans over OTLP/HTTP to that collector and to no other place: one span per request (named by its route
template, with its status), and one per SQL statement inside it, so a slow search shows which statement
took the time. ``/metrics`` and the health probes are left out. Query strings are redacted in the spans
as in the logs (a stream may carry ``?api_key=``), and statements carry their SQL text with its
placeholders, never the bound values. Spans are batched in the background and
flushed when the server stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from engramdb import __version__
from engramdb.api.logs import redact
from engramdb.config import Settings
from engramdb.errors import ConfigurationError

if TYPE_CHECKING:
    from fastapi import FastAPI

TRACES_PATH = "/v1/traces"
EXCLUDED = "metrics,v1/health,v1/health/live,v1/health/ready"
_URL_ATTRIBUTES = ("http.url", "http.target", "url.full", "url.query")


def traces_url(endpoint: str) -> str:
    """The collector's traces URL: the endpoint as given when it names the path, else with it added."""
    base = endpoint.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def _redact_request(span: Any, scope: dict[str, Any]) -> None:
    """Overwrite what the instrumentation recorded of the URL with its redacted form."""
    if span is None or not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            span.set_attribute(name, redact(value))


def install(app: FastAPI, settings: Settings) -> None:
    """Trace the app's requests and their SQL when ``settings.otel_endpoint`` is set; else do nothing."""
    if not settings.otel_endpoint:
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from engramdb.storage import tracing as storage_tracing
    except ImportError as exc:
        raise ConfigurationError(
            f"ENGRAM_OTEL_ENDPOINT is set but OpenTelemetry is not installed ({exc.name}): "
            "run `pip install 'engramdb[otel]'`, or unset ENGRAM_OTEL_ENDPOINT"
        ) from None

    resource = Resource.create({"service.name": settings.otel_service_name, "service.version": __version__})
    provider = TracerProvider(resource=resource)  # this app's own: the global provider is left alone
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(settings.otel_endpoint))))
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED,
        server_request_hook=_redact_request,
        exclude_spans=["receive", "send"],  # one span per request, not one per body chunk
    )
    app.state.tracer_provider = provider

    @asynccontextmanager
    async def traced() -> AsyncIterator[None]:
        """Trace the statements of the app's database (known once the runtime is up); flush at the end."""
        stop = storage_tracing.trace_statements(app.state.runtime.db, provider.get_tracer("engramdb.sql", __version__))
        try:
            yield
        finally:
            stop()
            provider.shutdown()  # exports what is still batched

    app.state.lifespan_hooks.append(traced)

"""Tracing: off by default; with ``ENGRAM_OTEL_ENDPOINT`` a request's span, and its statements' spans, reach a
real OTLP/HTTP receiver (a local listener), with the query string redacted; /metrics is never traced."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from engramdb.api import tracing
from engramdb.api.app import create_app
from engramdb.config import Settings
from engramdb.errors import ConfigurationError
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database
from tests.webhook_listener import Listener


@pytest.fixture
def receiver() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


def _spans(listener: Listener) -> list[tuple[str, dict[str, str], str]]:
    """(name, attributes, service name) of every span the receiver got."""
    found = []
    for request in listener.received(tracing.TRACES_PATH):
        export = ExportTraceServiceRequest.FromString(request.body)
        for resource_spans in export.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    attributes = {a.key: a.value.string_value or str(a.value.int_value) for a in span.attributes}
                    found.append((span.name, attributes, service))
    return found


async def test_requests_and_their_statements_are_traced_to_the_configured_collector(
    settings: Settings,
    db: Database,
    embedder,
    receiver: Listener,  # type: ignore[no-untyped-def]
) -> None:
    traced = settings.model_copy(update={"otel_endpoint": receiver.base, "otel_service_name": "engram-test"})
    app = create_app(traced, db=db, embedder=embedder)
    _, key = await keys.create_organization(db, name="traced")
    async with app.router.lifespan_context(app):  # the hook that traces SQL, and flushes at the end
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://engram.test") as client:
            headers = {"Authorization": f"Bearer {key.api_key}"}
            made = await client.post("/v1/memories", json={"content": "Ana keeps bees"}, headers=headers)
            assert made.status_code == 201
            memory_id = made.json()["id"]
            assert (await client.get(f"/v1/memories/{memory_id}", headers=headers)).status_code == 200
            refused = await client.get(f"/v1/memories?api_key={key.api_key}", headers=headers)
            assert refused.status_code == 422  # not a parameter of this route, but its span records the URL
            assert (await client.get("/metrics")).status_code == 200
    spans = _spans(receiver)  # exported by the shutdown at the lifespan's end
    assert spans and {service for _, _, service in spans} == {"engram-test"}
    names = [name for name, _, _ in spans]
    assert "POST /v1/memories" in names and "GET /v1/memories/{memory_id}" in names
    assert not any("metrics" in name for name in names)
    statements = [attrs["db.query.text"] for _, attrs, _ in spans if "db.query.text" in attrs]
    assert any(text.startswith("INSERT INTO memory") for text in statements)
    everything = repr(spans)
    assert key.api_key not in everything and "Ana keeps bees" not in everything  # no secrets, no bound values


def test_tracing_is_off_unless_an_endpoint_is_set(settings: Settings, db: Database, embedder) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings, db=db, embedder=embedder)
    assert settings.otel_endpoint is None and not hasattr(app.state, "tracer_provider")
    assert tracing.traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert tracing.traces_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"


def test_an_endpoint_without_the_packages_says_what_to_install(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'engramdb\[otel\]'"):
        tracing.install(
            create_app(settings.model_copy(update={"otel_endpoint": None}), db=None),
            settings.model_copy(update={"otel_endpoint": "http://127.0.0.1:4318"}),
        )

"""Prometheus series, defined once: services and providers increment them, the API serves ``/metrics``.

Counters and histograms live in one registry per process (``REGISTRY``). What is read when a scrape
comes in (the job queue's depth and the age of its oldest due job, the database pool's use) is not kept
here: the API reads it at scrape time (``engramdb.api.metrics``) and renders it with ``render``.

Several processes (``engramdb serve --workers N``): each worker process has its own counters, so the
server puts prometheus-client in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``serve`` before
the workers start): every process writes its values to a file there and a scrape, answered by any of
them, sums the files. Per-organization figures are not series (their number grows with the tenants):
they are in ``GET /v1/usage``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds: a request or search from 5 ms to 10 s; an embedding batch from 1 ms.
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_EMBED = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "engram_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "engram_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
SEARCH_DURATION = Histogram(
    "engram_search_duration_seconds",
    "Time one search takes in the service (embedding, retrieval, fusion), by mode.",
    ["mode"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
SEARCH_STATEMENTS = Counter(
    "engram_search_statements",
    "Retrieval statements a search needed, by how it got them: kept (built for an earlier search of the same "
    "scope and reused), built (new, now kept), unkeyable (conditions that cannot be keyed: built every time).",
    ["outcome"],
    registry=REGISTRY,
)
EMBED_BATCHES = Counter(
    "engram_embedding_batches", "Calls to the embedding model, by kind (query or passage).", ["kind"], registry=REGISTRY
)
EMBED_TEXTS = Counter(
    "engram_embedding_texts",
    "Texts embedded by the model (rate: texts per second), by kind.",
    ["kind"],
    registry=REGISTRY,
)
EMBED_DURATION = Histogram(
    "engram_embedding_batch_duration_seconds",
    "Time one call to the embedding model takes, by kind.",
    ["kind"],
    buckets=_EMBED,
    registry=REGISTRY,
)
EMBED_WAITING = Gauge(
    "engram_embedding_waiting_texts",
    "Texts of API requests waiting for, or in, the embedding model (bounded by ENGRAM_EMBED_QUEUE_TEXTS).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
OVERLOAD = Counter(
    "engram_overload_rejections",
    "Requests answered 503 to shed load, by reason (busy: no turn within ENGRAM_ADMISSION_WAIT_MS; db_pool: "
    "no connection free in time; embedder: queue full).",
    ["reason"],
    registry=REGISTRY,
)
ACTIVE_REQUESTS = Gauge(
    "engram_active_requests",
    "API requests at work (holding a turn, bounded by ENGRAM_MAX_ACTIVE_REQUESTS per process).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
ADMISSION_WAIT = Histogram(
    "engram_admission_wait_seconds",
    "Time an admitted API request waited for its turn.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    registry=REGISTRY,
)
DB_READS = Counter(
    "engram_db_reads",
    "Read-only transactions by the server that ran them (replica, or primary: no replica configured counts "
    "nothing; the replica behind the caller's last write, unreachable or busy).",
    ["server"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "engram_rate_limited",
    "Requests answered 429, by route class and by whose limit (key or org).",
    ["route_class", "scope"],
    registry=REGISTRY,
)
JOBS = Counter(
    "engram_jobs",
    "Job attempts finished, by kind and outcome (succeeded, retried, failed, interrupted).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_DELIVERIES = Counter(
    "engram_webhook_deliveries",
    "Webhook delivery attempts, by outcome (succeeded, retrying, failed).",
    ["outcome"],
    registry=REGISTRY,
)
LLM_TOKENS = Counter(
    "engram_llm_tokens", "Tokens the LLM reported, by type (prompt or completion).", ["type"], registry=REGISTRY
)
LLM_CALLS = Counter("engram_llm_calls", "Chat completions answered by the LLM.", registry=REGISTRY)


# Every label value known in advance starts at 0, so a dashboard shows a flat line rather than no data.
for _type in ("prompt", "completion"):
    LLM_TOKENS.labels(_type)
for _outcome in ("succeeded", "retrying", "failed"):
    WEBHOOK_DELIVERIES.labels(_outcome)
for _reason in ("db_pool", "embedder"):
    OVERLOAD.labels(_reason)
for _kind in ("engram.extract", "engram.narrate"):
    for _outcome in ("succeeded", "retried", "failed", "interrupted"):
        JOBS.labels(_kind, _outcome)


def gauge(name: str, documentation: str, values: Iterable[tuple[dict[str, str], float]]) -> GaugeMetricFamily:
    """A gauge read at scrape time (one sample per label set)."""
    samples = list(values)
    family = GaugeMetricFamily(name, documentation, labels=sorted(samples[0][0]) if samples else None)
    for labels, value in samples:
        if labels:
            family.add_metric([labels[k] for k in sorted(labels)], value)
        else:
            family.add_metric([], value)
    return family


class _Readings(Collector):
    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self.families


def render(readings: list[GaugeMetricFamily]) -> bytes:
    """The text exposition: this process's series (every process's, in multiprocess mode) and ``readings``."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    extra = CollectorRegistry()
    extra.register(_Readings(readings))
    return body + generate_latest(extra)

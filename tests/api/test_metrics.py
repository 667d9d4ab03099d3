"""/metrics: Prometheus text with the main series after some traffic; served to loopback or with the token,
a 404 to anyone else; outside /v1 and the OpenAPI document; summed across processes in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from prometheus_client.parser import text_string_to_metric_families

from engramdb.api import metrics
from engramdb.api.app import V1_ROUTERS, create_app
from engramdb.config import Settings
from tests.conftest import Org, assert_problem

TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, auto_migrate=False, key_touch_interval_s=0, metrics_token=TOKEN)


def _from(app, host: str, **headers: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://engram.test", headers=headers)


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_every_route_is_labelled_with_its_template_in_the_openapi_document(settings: Settings) -> None:
    """The label of each /v1 route is the path the OpenAPI document gives it, found without building it
    (which took seconds on the first request of every process and every local CLI command)."""
    app = create_app(settings)
    documented = {op["operationId"]: path for path, ops in app.openapi()["paths"].items() for op in ops.values()}
    labels = metrics.templates("/v1", V1_ROUTERS)
    routes = [route for router in V1_ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    assert len(routes) >= 150 and len(labels) == len(routes)
    assert all(labels[id(r)] == documented[r.operation_id or r.unique_id] for r in routes)


async def test_metrics_after_some_requests(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    c = org.client
    memory = (await c.post("/v1/memories", json={"content": "Ana keeps bees in Braga"})).json()
    assert (await c.get(f"/v1/memories/{memory['id']}")).status_code == 200
    assert (await c.post("/v1/search", json={"query": "who keeps bees?"})).status_code == 200
    assert (await c.post("/v1/search", json={"query": "bees", "mode": "keyword"})).status_code == 200
    assert (await c.get("/v1/no-such-thing")).status_code == 404
    async with _from(app, "127.0.0.1") as local:
        r = await local.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    s = _samples(r.text)
    requests = {(lb["method"], lb["route"], lb["status"]): v for lb, v in s["engram_http_requests_total"]}
    assert requests[("POST", "/v1/memories", "201")] >= 1
    assert requests[("GET", "/v1/memories/{memory_id}", "200")] >= 1  # the template, never the id
    assert requests[("GET", "<unmatched>", "404")] >= 1
    assert not any(memory["id"] in route for _, route, _ in requests)
    buckets = [lb for lb, _ in s["engram_http_request_duration_seconds_bucket"] if lb["route"] == "/v1/search"]
    assert buckets and {"le", "method", "route"} == set(buckets[0])
    modes = {lb["mode"]: v for lb, v in s["engram_search_duration_seconds_count"]}
    assert modes["hybrid"] >= 1 and modes["keyword"] >= 1
    statements = {lb["outcome"]: v for lb, v in s["engram_search_statements_total"]}
    assert statements["built"] >= 1  # the first search of a scope builds its statements
    assert {lb["kind"] for lb, _ in s["engram_embedding_batches_total"]} >= {"query", "passage"}
    assert sum(v for _, v in s["engram_embedding_texts_total"]) >= 2
    assert s["engram_embedding_waiting_texts"][0][1] == 0
    assert s["engram_db_pool_size"][0][1] == 10 and s["engram_db_pool_checked_out"][0][1] >= 0
    assert s["engram_database_up"][0][1] == 1
    assert s["engram_job_workers"][0][1] == 0  # no worker in this test
    assert "engram_job_queue_due" in r.text  # a lane appears once it has jobs (none may be queued here)
    assert {lb["type"] for lb, _ in s["engram_llm_tokens_total"]} == {"prompt", "completion"}
    assert {lb["outcome"] for lb, _ in s["engram_webhook_deliveries_total"]} == {"succeeded", "retrying", "failed"}
    assert ("engram.extract", "succeeded") in {(lb["kind"], lb["outcome"]) for lb, _ in s["engram_jobs_total"]}


async def test_queue_depth_is_read_at_scrape_time(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    session = (await org.client.post("/v1/sessions", json={})).json()
    added = await org.client.post(
        f"/v1/sessions/{session['id']}/messages", json={"messages": [{"role": "user", "content": "I like jazz."}]}
    )
    assert added.json()["job"]["status"] == "queued"  # no worker runs in this test module
    async with _from(app, "::1") as local:
        s = _samples((await local.get("/metrics")).text)
    due = {lb["queue"]: v for lb, v in s["engram_job_queue_due"]}
    assert due["engram"] >= 1
    oldest = {lb["queue"]: v for lb, v in s["engram_job_queue_oldest_due_seconds"]}
    assert 0 <= oldest["engram"] < 600


async def test_metrics_are_hidden_from_other_clients(app) -> None:  # type: ignore[no-untyped-def]
    async with _from(app, "203.0.113.9") as remote:
        hidden = await remote.get("/metrics")
        assert_problem(hidden, 404)
        unknown = await remote.get("/no-such-page")
        assert hidden.json()["detail"] == unknown.json()["detail"]  # the same 404 as a path that is not there
        assert_problem(await remote.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}), 404)
        assert_problem(await remote.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}), 404)
        shown = await remote.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert shown.status_code == 200 and "engram_http_requests_total" in shown.text
    async with _from(app, "::ffff:127.0.0.1") as mapped:
        assert (await mapped.get("/metrics")).status_code == 200
    assert "/metrics" not in app.openapi()["paths"]
    assert (await _from(app, "127.0.0.1").get("/v1/metrics")).status_code == 404


async def test_loopback_can_be_refused_too(settings: Settings, db, embedder) -> None:  # type: ignore[no-untyped-def]
    from engramdb.server import create_app

    strict = create_app(settings.model_copy(update={"metrics_loopback": False}), db=db, embedder=embedder)
    async with _from(strict, "127.0.0.1") as local:
        assert_problem(await local.get("/metrics"), 404)
        assert (await local.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200


def test_the_token_must_not_be_a_placeholder() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        Settings(metrics_token="secret")
    assert Settings(metrics_token="").metrics_token is None


COUNT_AND_EXIT = """
from engramdb import metrics
metrics.HTTP_REQUESTS.labels("GET", "/v1/teams", "200").inc({n})
metrics.EMBED_WAITING.inc(0)
"""
RENDER = """
import sys
from engramdb import metrics
sys.stdout.write(metrics.render([]).decode())
"""


def test_multiprocess_mode_sums_every_process(tmp_path: Path) -> None:
    """`engramdb serve --workers N` sets PROMETHEUS_MULTIPROC_DIR: any worker's scrape sums them all."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", COUNT_AND_EXIT.format(n=n)], env=env, check=True, timeout=60)
    out = subprocess.run(
        [sys.executable, "-c", RENDER], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    s = _samples(out)
    total = {(lb["method"], lb["route"], lb["status"]): v for lb, v in s["engram_http_requests_total"]}
    assert total[("GET", "/v1/teams", "200")] == 5


async def test_the_grafana_dashboard_names_only_served_series(app) -> None:  # type: ignore[no-untyped-def]
    import json
    import re

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    named = {re.sub(r"_(bucket|sum|count)$", "", n) for e in exprs for n in re.findall(r"\bengram_\w+", e)}
    async with _from(app, "127.0.0.1") as local:
        served = {
            line.split()[2] for line in (await local.get("/metrics")).text.splitlines() if line.startswith("# TYPE")
        }
    served |= {n + "_total" for n in served}  # a counter's family is named without _total
    assert len(named) >= 15 and named <= served, sorted(named - served)

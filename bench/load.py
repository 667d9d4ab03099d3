"""Load: N concurrent clients for T seconds against `engramdb serve` on a fresh embedded database (or --url),
a mix of 60% searches, 30% message writes (each queues extraction) and 10% memory writes. Reports
throughput, answers by status and latency percentiles, overall and per operation.

    .venv/bin/python bench/load.py --clients 50 --seconds 30
    .venv/bin/python bench/load.py --clients 200 --seconds 15
    .venv/bin/python bench/load.py --clients 50 --seconds 30 --limits searches=600,extraction=300,writes=100 --window 10
    .venv/bin/python bench/load.py --clients 200 --seconds 15 --env ENGRAM_DB_POOL_SIZE=5 --env ENGRAM_DB_MAX_OVERFLOW=0

Clients send each request once (no retries: a 429 or 503 is counted as answered) and start the next one at
once, except that after a 429 or 503 a client first waits what its `Retry-After` says, as the SDK does
(`--no-backoff`: at once, a client that ignores it). `--limits` sets per-key limits per `--window` seconds
(ENGRAM_RATE_LIMIT_<CLASS>) on the server it starts. The client runs on the same machine as the server and
takes its share of the CPU; results are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import engram_server, percentile  # noqa: E402

WORDS = (
    "garden bees honey Porto jazz piano coffee hiking Lisbon rain books chess river kayak bread tomato "
    "violin marathon camera winter tea sailing painting museum"
).split()
MIX = (("search", 0.6), ("message", 0.3), ("memory", 0.1))


def _sentence(rng: random.Random) -> str:
    return f"I {rng.choice(['like', 'tried', 'bought', 'miss', 'planned'])} {' '.join(rng.sample(WORDS, 4))}."


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, object]) -> httpx.Response:
    """A set-up write, waiting out a 429 or 503 as the SDK would (rate limits may be on)."""
    while True:
        r = await client.post(path, json=body)
        if r.status_code not in (429, 503):
            r.raise_for_status()
            return r
        await asyncio.sleep(float(r.headers.get("retry-after", "1")))


async def _seed(client: httpx.AsyncClient, sessions: int) -> list[str]:
    rng = random.Random(0)
    ids = []
    for n in range(sessions):
        ids.append((await _post(client, "/v1/sessions", {"external_user_id": f"user-{n}"})).json()["id"])
    for _ in range(20):
        await _post(client, "/v1/memories", {"content": _sentence(rng), "external_user_id": "user-0"})
    return ids


async def _client(
    client: httpx.AsyncClient,
    sessions: list[str],
    deadline: float,
    seed: int,
    results: list[tuple[str, int, float]],
    backoff: bool,
) -> None:
    rng = random.Random(seed)
    while time.perf_counter() < deadline:
        op = rng.choices([m[0] for m in MIX], weights=[m[1] for m in MIX])[0]
        if op == "search":
            request = client.post("/v1/search", json={"query": " ".join(rng.sample(WORDS, 3)), "top_k": 10})
        elif op == "message":
            body = {"messages": [{"role": "user", "content": _sentence(rng)}]}
            request = client.post(f"/v1/sessions/{rng.choice(sessions)}/messages", json=body)
        else:
            request = client.post("/v1/memories", json={"content": _sentence(rng), "external_user_id": "user-1"})
        started = time.perf_counter()
        retry_after = 0.0
        try:
            response = await request
            status = response.status_code
            if status in (429, 503):
                retry_after = float(response.headers.get("retry-after", "1"))
        except httpx.HTTPError:
            status = 0  # no answer (connection refused, reset, timed out)
        results.append((op, status, (time.perf_counter() - started) * 1000))
        if backoff and retry_after:
            await asyncio.sleep(min(retry_after, max(0.0, deadline - time.perf_counter())))


def _report(results: list[tuple[str, int, float]], wall: float, clients: int) -> dict[str, object]:
    by_op: dict[str, list[float]] = defaultdict(list)
    for op, _, ms in results:
        by_op[op].append(ms)
    statuses = Counter(status for _, status, _ in results)
    ok = [ms for _, status, ms in results if 200 <= status < 300]
    every = [ms for _, _, ms in results]
    summary = {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": len(results),
        "throughput_rps": round(len(results) / wall, 1),
        "ok_rps": round(len(ok) / wall, 1),
        "statuses": dict(sorted(statuses.items())),
        "share_429": round(statuses.get(429, 0) / max(1, len(results)), 3),
        "share_5xx": round(sum(v for k, v in statuses.items() if k >= 500) / max(1, len(results)), 3),
        "latency_ms": {q: round(percentile(every, q), 1) for q in (50, 95, 99)},
        "latency_ok_ms": {q: round(percentile(ok, q), 1) for q in (50, 95, 99)},
        "latency_by_status_ms": {
            status: {f"p{q}": round(percentile([ms for _, st, ms in results if st == status], q), 1) for q in (50, 95)}
            for status in sorted(statuses)
        },
        "by_operation": {
            op: {"requests": len(ms), **{f"p{q}": round(percentile(ms, q), 1) for q in (50, 95, 99)}}
            for op, ms in sorted(by_op.items())
        },
    }
    return summary


async def run(base: str, api_key: str, clients: int, seconds: float, backoff: bool = True) -> dict[str, object]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as client:
        sessions = await _seed(client, 20)
        results: list[tuple[str, int, float]] = []
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_client(client, sessions, deadline, n, results, backoff) for n in range(clients)))
        wall = time.perf_counter() - started
        summary = _report(results, wall, clients)
        summary["server"] = await _scrape(client)
    return summary


async def _scrape(client: httpx.AsyncClient) -> dict[str, float]:
    """What the server says it shed and refused (its /metrics, served to this loopback client)."""
    wanted = ("engram_overload_rejections_total", "engram_rate_limited_total", "engram_job_queue_due")
    found: dict[str, float] = {}
    r = await client.get("/metrics")
    if r.status_code != 200:
        return found
    for line in r.text.splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--url", help="an Engram server to load instead of starting one")
    parser.add_argument("--api-key", help="with --url: an admin key of the organization to load")
    parser.add_argument("--limits", default="", help="per-key limits per window: searches=600,extraction=300")
    parser.add_argument("--window", type=int, default=60, help="rate-limit window, seconds")
    parser.add_argument("--no-backoff", action="store_true", help="ignore Retry-After: send again at once")
    parser.add_argument("--env", action="append", default=[], help="extra ENGRAM_X=value for the started server")
    args = parser.parse_args()
    env = {"ENGRAM_RATE_LIMIT_WINDOW_S": str(args.window)}
    for pair in filter(None, args.limits.split(",")):
        name, _, value = pair.partition("=")
        env[f"ENGRAM_RATE_LIMIT_{name.strip().upper()}"] = value.strip()
    env.update(dict(item.split("=", 1) for item in args.env))
    with engram_server(args.url, args.api_key, env_extra=env) as (base, key):
        summary = asyncio.run(run(base, key, args.clients, args.seconds, not args.no_backoff))
    summary["server_env"] = {k: v for k, v in env.items() if args.limits or k != "ENGRAM_RATE_LIMIT_WINDOW_S"}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

"""Federated insights: the error of released counts against the theory, and the budget that refuses.

Synthetic participants with a known true answer: ``--participants`` federated organizations on a fresh
embedded PostgreSQL, each with a random number (0 to 15) of memories in each of 8 categories, counted by a
``memory_categories`` session with bound 10 (so the true answer is the sum of each participant's counts
clamped to 10, known before any release). Through the API in process (no socket), the same code every
server runs (``services/insights/compute.py`` and ``mechanism.py``): for ε = 0.5, 1 and 4, 100 releases;
for each release the mean absolute error over the 8 buckets; then their mean and spread (standard
deviation over the releases) beside the discrete Laplace prediction for scale ``b = sensitivity / ε``
(sensitivity 8 × 10 = 80): ``E|X| = 2r / (1 − r²)``, ``r = e^(−1/b)``, and the spread of a mean of 8
such values ``sd(|X|) / √8``. A participation's budget caps its releases per session (at most ε 100), so
ε = 4 runs over four sessions of 25 releases. Last, a session whose participants gave a budget of 2ε:
two releases, and the third refused (409, nothing spent).

    .venv/bin/python bench/insights.py                   # 10 participants, 100 releases per ε
    .venv/bin/python bench/insights.py --participants 20 -n 200

Results are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engramdb.config import Settings  # noqa: E402
from engramdb.providers.embedder import HashEmbedder  # noqa: E402
from engramdb.server import create_app  # noqa: E402
from engramdb.services.insights import mechanism  # noqa: E402
from engramdb.services.tenancy import keys  # noqa: E402
from engramdb.storage.database import Database  # noqa: E402
from engramdb.storage.embedded import start_embedded  # noqa: E402
from engramdb.storage.migrate import migrate, prepare_vectors  # noqa: E402

CATEGORIES = ["billing", "travel", "health", "hardware", "legal", "cooking", "music", "sport"]
BOUND = 10
EPSILONS = (0.5, 1.0, 4.0)


def _client(app: Any, key: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://bench", headers={"Authorization": f"Bearer {key}"})


def theory(scale: float, buckets: int) -> tuple[float, float]:
    """The discrete Laplace's E|X| and the standard deviation of a mean of ``buckets`` such |X|."""
    r = math.exp(-1.0 / scale)
    mean_abs = 2 * r / (1 - r * r)
    second = 2 * r / (1 - r) ** 2  # E X² = Var X
    return mean_abs, math.sqrt(max(second - mean_abs**2, 0.0) / buckets)


async def _ok(response: httpx.Response, status: int = 201) -> Any:
    if response.status_code != status:
        raise SystemExit(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")
    return response.json()


async def run(participants: int, releases: int, seed: int) -> None:
    url = start_embedded(Path(tempfile.mkdtemp(prefix="engram-bench-insights-")), "bench")
    migrate(url)
    embedder = HashEmbedder()
    prepare_vectors(url, embedder.model, embedder.dimensions)
    settings = Settings(database_url=url, auto_migrate=False)
    db = Database.connect(settings)
    rng = random.Random(seed)
    try:
        app = create_app(settings, db=db, embedder=embedder)
        owner_org, owner_key = await keys.create_organization(db, name="owner")
        owner = _client(app, owner_key.api_key)
        members: list[tuple[str, httpx.AsyncClient]] = []
        truth = [0] * len(CATEGORIES)
        for i in range(participants):
            org, key = await keys.create_organization(db, name=f"participant-{i}")
            client = _client(app, key.api_key)
            await _ok(await client.patch("/v1/organization", json={"isolation": "federated"}), 200)
            for b, category in enumerate(CATEGORIES):
                n = rng.randint(0, 15)
                truth[b] += min(n, BOUND)
                for j in range(n):
                    body = {"content": f"note {j} on {category}", "categories": [category]}
                    await _ok(await client.post("/v1/memories", json=body))
            members.append((str(org.id), client))
        print(f"{participants} participants, {len(CATEGORIES)} buckets, bound {BOUND}; true answer {truth}")
        load = os.getloadavg()
        print(f"load average before the releases: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")

        async def session(epsilon: float, budget: float) -> str:
            body = {
                "topic": f"categories at ε={epsilon}",
                "query": "memory_categories",
                "buckets": CATEGORIES,
                "bound": BOUND,
                "epsilon": epsilon,
                "invited_org_ids": [org_id for org_id, _ in members],
            }
            sid = str((await _ok(await owner.post("/v1/insights/sessions", json=body)))["id"])
            for _, client in members:
                await _ok(await client.post(f"/v1/insights/sessions/{sid}/join", json={"epsilon_budget": budget}))
            return sid

        print("| ε | scale b | releases | MAE measured | spread measured | MAE theory | spread theory | ms/release |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for epsilon in EPSILONS:
            per_session = int(min(releases, 100 // epsilon))
            maes: list[float] = []
            took: list[float] = []
            scale = 0.0
            while len(maes) < releases:
                sid = await session(epsilon, per_session * epsilon)
                for _ in range(min(per_session, releases - len(maes))):
                    start = time.perf_counter()
                    insight = await _ok(await owner.post(f"/v1/insights/sessions/{sid}/release"))
                    took.append((time.perf_counter() - start) * 1000)
                    scale = insight["scale"]
                    counts = [b["count"] for b in insight["histogram"]]
                    maes.append(sum(abs(c - v) for c, v in zip(counts, truth, strict=True)) / len(truth))
            mean_abs, spread = theory(scale, len(CATEGORIES))
            measured = (statistics.fmean(maes), statistics.stdev(maes))
            ms = statistics.median(took)
            print(
                f"| {epsilon:g} | {scale:g} | {len(maes)} | {measured[0]:.1f} | {measured[1]:.1f} "
                f"| {mean_abs:.1f} | {spread:.1f} | {ms:.0f} |"
            )
        sens = mechanism.sensitivity(len(CATEGORIES), BOUND)
        print(f"\nsensitivity {sens}; the theory's scale for ε: {[sens / e for e in EPSILONS]}")
        sid = await session(1.0, 2.0)
        for _ in range(2):
            await _ok(await owner.post(f"/v1/insights/sessions/{sid}/release"))
        refused = await owner.post(f"/v1/insights/sessions/{sid}/release")
        print(f"\nbudget 2, ε 1 per release: releases 1 and 2 answered 201; release 3 answered {refused.status_code}:")
        print(f"  {refused.json()['detail']}")
        spent = (await members[0][1].get("/v1/insights/participations", params={"status": "joined"})).json()
        print(
            f"  a participant's record for it: {[p['epsilon_spent'] for p in spent['data'] if p['session_id'] == sid]}"
        )
        for client in [owner, *(c for _, c in members)]:
            await client.aclose()
        del owner_org
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("-n", type=int, default=100, help="releases per ε")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(run(args.participants, args.n, args.seed))


if __name__ == "__main__":
    main()

"""Search with access grants: p50/p95 of ``POST /v1/search`` (memories) for user-bound keys holding 0, 10
and 1,000 active grants, against today's code path (grants neither read nor applied), on a fresh
embedded PostgreSQL with the real embedding model, through the API in process (no socket).

    .venv/bin/python bench/grants.py                  # 1,000 customers x 5 memories, 200 searches per case
    .venv/bin/python bench/grants.py --users 2000 -n 400

Each grant shares one customer's memories with the caller (half of them only those tagged ``account``),
as "team support reads user U's memories tagged account" would, one grant per customer. The last case
is the worst shape: 1,000 grants alike in nothing (each its own tag), so they cannot share one array
parameter. The cases take turns, one search each, so a shared machine's load weighs on all alike.
Results are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import percentile  # noqa: E402
from engramdb import ids  # noqa: E402
from engramdb.config import Settings  # noqa: E402
from engramdb.providers.minilm import MiniLMEmbedder  # noqa: E402
from engramdb.schemas.directory import ApiKeyCreate  # noqa: E402
from engramdb.server import create_app  # noqa: E402
from engramdb.services.core import visibility  # noqa: E402
from engramdb.services.tenancy import keys  # noqa: E402
from engramdb.storage import tables as t  # noqa: E402
from engramdb.storage.database import Database  # noqa: E402
from engramdb.storage.embedded import start_embedded  # noqa: E402
from engramdb.storage.migrate import migrate, prepare_vectors  # noqa: E402

TOPICS = ["router", "invoice", "password", "flight", "refund", "printer", "account", "order", "doctor", "garden"]
VERBS = ["needs", "asked about", "complained about", "prefers", "reset", "paid for", "lost", "booked"]
QUERIES = [
    "who had trouble with the router",
    "refund for a late order",
    "which account was locked",
    "printer keeps jamming",
    "flight booked for next week",
    "password reset requested",
]


def _memory(rng: random.Random, who: str) -> tuple[str, list[str]]:
    topic = rng.choice(TOPICS)
    text = f"{who} {rng.choice(VERBS)} the {topic} on {rng.choice(['Monday', 'Friday', 'the 3rd', 'arrival'])}"
    return text, [topic] if rng.random() < 0.5 else []


CASES = ("today", "0 grants", "10 grants", "1,000 grants", "1,000 unlike grants")


async def _seed(
    db: Database, embedder: MiniLMEmbedder, settings: Settings, users: int, per_user: int
) -> dict[str, Any]:
    """``users`` customers with ``per_user`` memories each, and one caller per case with 50 of its own."""
    org, admin = await keys.create_organization(db, name="bench-grants")
    rng = random.Random(7)
    owners = [ids.uuid7() for _ in range(users)]
    callers = {case: ids.uuid7() for case in CASES[1:]}
    async with db.tenant(org.id) as conn:
        rows = [{"org_id": org.id, "id": u, "external_id": f"u{i}", "metadata": {}} for i, u in enumerate(owners)]
        rows += [{"org_id": org.id, "id": u, "external_id": case, "metadata": {}} for case, u in callers.items()]
        await conn.execute(insert(t.user_account), rows)
    plan = [(u, *_memory(rng, f"customer {i}")) for i, u in enumerate(owners) for _ in range(per_user)]
    plan += [(u, *_memory(rng, "my own note")) for u in callers.values() for _ in range(50)]
    for start in range(0, len(plan), 512):
        batch = plan[start : start + 512]
        vectors = await embedder.embed_batch([text for _, text, _ in batch], kind="passage")
        async with db.tenant(org.id) as conn:
            await conn.execute(
                insert(t.memory),
                [
                    {
                        "org_id": org.id,
                        "id": ids.uuid7(),
                        "user_id": user,
                        "content": text,
                        "tags": tags,
                        "content_hash": hashlib.sha256(text.encode()).digest(),
                        "embedding": vector,
                        "embedding_model": embedder.model,
                        "language": settings.search_language,
                    }
                    for (user, text, tags), vector in zip(batch, vectors, strict=True)
                ],
            )
        print(f"  {min(start + 512, len(plan)):>6} of {len(plan)} memories", end="\r", flush=True)
    print()
    async with db.tenant(org.id) as conn:
        for case, count, unlike in (
            ("10 grants", 10, False),
            ("1,000 grants", 1000, False),
            ("1,000 unlike grants", 1000, True),
        ):
            await conn.execute(insert(t.access_grant), _grants(org.id, callers[case], owners[:count], unlike=unlike))
    return {"org_id": org.id, "admin": admin.api_key, "callers": callers, "memories": len(plan), "users": users}


def _grants(org_id: Any, grantee: Any, owners: list[Any], *, unlike: bool) -> list[dict[str, Any]]:
    """One grant per owner: half of them only for memories tagged ``account`` (or, ``unlike``, each grant
    its own tag, so no two share a shape)."""
    return [
        {
            "org_id": org_id,
            "id": ids.uuid7(),
            "permission": "read",
            "resource": "memories",
            "grantee_user_id": grantee,
            "owner_user_id": owner,
            "tags": [f"tag-{i}"] if unlike else (["account"] if i % 2 else []),
            "categories": [],
        }
        for i, owner in enumerate(owners)
    ]


async def _search(client: httpx.AsyncClient, query: str) -> tuple[float, int]:
    started = time.perf_counter()
    r = await client.post("/v1/search", json={"query": query, "types": ["memories"], "top_k": 10})
    took = (time.perf_counter() - started) * 1000
    assert r.status_code == 200, r.text
    return took, len(r.json()["results"])


async def _authentication(db: Database, clients: dict[str, httpx.AsyncClient], count: int) -> None:
    """What reading the grants adds to authenticating a bound key, alone (``keys.authenticate``, in turns):
    in an organization that shares nothing (one probe in the key's own query), and in one that shares."""
    _, admin = await keys.create_organization(db, name="bench-quiet")
    quiet = await keys.authenticate(db, admin.api_key)
    made = await keys.create_key(db, quiet, ApiKeyCreate(name="bound", external_user_id="someone"))
    sharing = clients["0 grants"].headers["Authorization"].removeprefix("Bearer ")
    loader = visibility.with_grants

    async def unchanged(conn: Any, caller: Any) -> Any:
        return caller

    cases = {"no grants in the org": made.api_key, "org shares, today": sharing, "org shares, 0 grants": sharing}
    took: dict[str, list[float]] = {case: [] for case in cases}
    for i in range(count * 3 + 50):
        for case, key in cases.items():
            visibility.with_grants = unchanged if case.endswith("today") else loader
            try:
                started = time.perf_counter()
                await keys.authenticate(db, key, touch_interval_s=10**6)
            finally:
                visibility.with_grants = loader
            if i >= 50:
                took[case].append((time.perf_counter() - started) * 1000)
    print("Authenticating a user-bound key (ms):\n")
    print("| case                   |   mean |    p50 |    p95 |")
    print("|------------------------|-------:|-------:|-------:|")
    for case, ms in took.items():
        print(f"| {case:<22} | {statistics.fmean(ms):6.2f} | {percentile(ms, 50):6.2f} | {percentile(ms, 95):6.2f} |")
    print()


def _line(name: str, ms: list[float], hits: float) -> str:
    return (
        f"| {name:<22} | {statistics.fmean(ms):6.1f} | {percentile(ms, 50):6.1f} | {percentile(ms, 95):6.1f} "
        f"| {hits:4.1f} |"
    )


async def run(users: int, per_user: int, count: int) -> None:
    url = start_embedded(Path(tempfile.mkdtemp(prefix="engram-bench-grants-")), "bench")
    migrate(url)
    embedder = MiniLMEmbedder()
    prepare_vectors(url, embedder.model, embedder.dimensions)
    settings = Settings(database_url=url, auto_migrate=False)
    db = Database.connect(settings)
    try:
        world = await _seed(db, embedder, settings, users, per_user)
        app = create_app(settings, db=db, embedder=embedder)
        transport = httpx.ASGITransport(app=app)
        clients: dict[str, httpx.AsyncClient] = {}
        admin = httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers={"Authorization": f"Bearer {world['admin']}"}
        )
        for case, user in world["callers"].items():
            made = await admin.post("/v1/keys", json={"name": case, "user_id": str(user)})
            headers = {"Authorization": f"Bearer {made.json()['api_key']}"}
            clients[case] = httpx.AsyncClient(transport=transport, base_url="http://bench", headers=headers)
        clients["today"] = clients["0 grants"]
        loader = visibility.with_grants

        async def unchanged(conn: Any, caller: Any) -> Any:
            return caller

        took: dict[str, list[float]] = {case: [] for case in CASES}
        hits: dict[str, int] = dict.fromkeys(CASES, 0)
        # Round robin, one search per case in turn, so the shared machine's load weighs on every case alike.
        for i in range(count + 20):
            for case in CASES:
                if case == "today":  # today's path: grants neither read nor applied
                    visibility.with_grants = unchanged
                try:
                    ms, found = await _search(clients[case], QUERIES[i % len(QUERIES)])
                finally:
                    visibility.with_grants = loader
                if i >= 20:  # the first rounds warm the model, the pool and the plans
                    took[case].append(ms)
                    hits[case] += found
        await _authentication(db, clients, count)
        print(f"{world['memories']:,} memories of {world['users'] + 4:,} users; {count} searches per case (ms):\n")
        print("| case                   |   mean |    p50 |    p95 | hits |")
        print("|------------------------|-------:|-------:|-------:|-----:|")
        for case in CASES:
            print(_line(case, took[case], hits[case] / count))
        for client in [admin, *clients.values()]:
            await client.aclose()
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000, help="customers, each with --per-user memories")
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("-n", type=int, default=200, help="searches per case")
    args = parser.parse_args()
    asyncio.run(run(args.users, args.per_user, args.n))


if __name__ == "__main__":
    main()

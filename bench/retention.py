"""A retention sweep over N memories of which 10 % have expired: wall time, rows per second, and what it does
to search latency meanwhile.

Seeds N synthetic memories (default 1,000,000) for one organization of 1,000 users, straight into the table
(``INSERT … SELECT generate_series``; vectors drawn from a pool of 1,000 random ones), one in ten with an
``expires_at`` an hour past. Then, against ``engramdb serve`` on the same database (its own sweep off, no
worker), measures ``POST /v1/search`` filtered to one user (what an agent asks; the exact-scan path) from
a separate process, first alone, then while this process runs the retention sweep (``retention.sweep``,
the periodic job's own function, in batches of ``ENGRAM_RETENTION_BATCH_ROWS``), and reports the sweep's
wall time and rows per second, and search p50/p95/p99 before and during it.

    .venv/bin/python bench/retention.py                   # --rows 200000 on a small machine
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import sys
import tempfile
import time
import uuid
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from engramdb.config import Settings
from engramdb.providers.embedder import HashEmbedder
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.services.core.runtime import Runtime
from engramdb.services.governance import retention
from engramdb.storage.database import Database
from engramdb.storage.embedded import start_embedded
from engramdb.storage.migrate import migrate
from engramdb.storage.vectors import index_name

sys.path.insert(0, str(Path(__file__).parent))
from _server import engram_server, percentile  # noqa: E402

console = Console()
MODEL = MiniLMEmbedder.model
WORDS = (
    "garden trip sister coffee violin marathon puppy paint museum budget recipe lake concert library "
    "camping birthday rent guitar yoga novel train doctor wedding football kitchen"
).split()


def seed(url: str, org_id: uuid.UUID, rows: int, users: int = 1000) -> list[uuid.UUID]:
    """``rows`` memories over ``users`` users of the organization, every tenth expired; returns the users."""
    ids = [uuid.uuid4() for _ in range(users)]
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {index_name('memory', MODEL)}")  # searches here scan one user exactly
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO user_account (org_id, id) VALUES (%s, %s)", [(org_id, u) for u in ids])
        conn.execute(
            "CREATE UNLOGGED TABLE bench_vector AS SELECT n, (SELECT array_agg(random() - 0.5)::vector "
            "FROM generate_series(1, 384) WHERE n > 0) AS v FROM generate_series(0, 999) n"
        )
        step = 100_000
        for start in range(0, rows, step):
            conn.execute(
                """INSERT INTO memory (org_id, id, user_id, content, content_hash, embedding, embedding_model,
                                       expires_at)
                   SELECT %(org)s, gen_random_uuid(), (%(users)s::uuid[])[1 + g %% %(n)s],
                          'synthetic memory ' || g || ' about the ' || (%(words)s::text[])[1 + g %% 25], '\\x00',
                          bv.v, %(model)s,
                          CASE WHEN g %% 10 = 0 THEN now() - interval '1 hour' END
                   FROM generate_series(%(lo)s::int, %(hi)s::int) g JOIN bench_vector bv ON bv.n = g %% 1000""",
                {
                    "org": org_id,
                    "users": ids,
                    "n": users,
                    "words": WORDS,
                    "model": MODEL,
                    "lo": start,
                    "hi": min(rows, start + step) - 1,
                },
            )
            console.print(f"  seeded {min(rows, start + step):,} memories")
        conn.execute("DROP TABLE bench_vector")
        conn.execute("VACUUM ANALYZE memory")
    console.print(f"{rows:,} memories seeded in {time.perf_counter() - started:.0f} s")
    return ids


def _search_loop(base: str, key: str, users: list[str], stop: Event, out: multiprocessing.Queue, limit: int) -> None:  # type: ignore[type-arg]
    """In its own process: searches filtered to a random user, one at a time, until ``stop`` (or ``limit``
    searches); puts the latencies (ms) on ``out``."""
    rng = random.Random(7)
    latencies: list[float] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for _ in range(10):  # warm-up
            client.post("/v1/search", json={"query": "coffee", "types": ["memories"], "user_id": users[0]})
        while not stop.is_set() and len(latencies) < limit:
            body = {"query": " ".join(rng.sample(WORDS, 3)), "types": ["memories"], "top_k": 10}
            body["user_id"] = rng.choice(users)
            started = time.perf_counter()
            client.post("/v1/search", json=body).raise_for_status()
            latencies.append((time.perf_counter() - started) * 1000)
    out.put(latencies)


def searching(
    base: str, key: str, users: list[str], limit: int
) -> tuple[multiprocessing.Process, Event, multiprocessing.Queue]:  # type: ignore[type-arg]
    stop: Event = multiprocessing.Event()
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    proc = multiprocessing.Process(target=_search_loop, args=(base, key, users, stop, out, limit))
    proc.start()
    return proc, stop, out


async def sweep(url: str, batch: int) -> tuple[int, float]:
    settings = Settings(database_url=url, retention_batch_rows=batch, auto_migrate=False)
    db = Database.connect(settings)
    rt = Runtime.build(settings, db, embedder=HashEmbedder(384))
    try:
        started = time.perf_counter()
        changed = await retention.sweep(rt)
        return changed, time.perf_counter() - started
    finally:
        await rt.close()
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=Settings.model_fields["retention_batch_rows"].default)
    parser.add_argument("--queries", type=int, default=300, help="searches measured before the sweep")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="engram-retention-"))
    url = start_embedded(data_dir, "engram")
    migrate(url)
    # The server's own sweep, worker and per-organization index builds stay off: only what is measured runs.
    env = {
        "ENGRAM_DATABASE_URL": url,
        "ENGRAM_RETENTION_SWEEP_MINUTES": "0",
        "ENGRAM_WORKER_IN_SERVE": "false",
        "ENGRAM_ORG_INDEX_ROWS": "0",
    }
    with engram_server(None, None, env) as (base, key):
        with psycopg.connect(url) as conn:
            org_id = conn.execute("SELECT org_id FROM organization WHERE name = 'bench'").fetchone()[0]  # type: ignore[index]
        users = [str(u) for u in seed(url, org_id, args.rows)]

        proc, stop, out = searching(base, key, users, args.queries)
        before: list[float] = out.get()
        proc.join()

        proc, stop, out = searching(base, key, users, 10**9)
        time.sleep(2)  # the searcher is warm and under way
        changed, wall = asyncio.run(sweep(url, args.batch))
        stop.set()
        during: list[float] = out.get()
        proc.join()
        with psycopg.connect(url) as conn:
            left = conn.execute("SELECT count(*), count(expires_at) FROM memory").fetchone()
    assert left is not None and left[1] == 0, f"expired memories left: {left}"
    table = Table(
        title=f"Retention sweep over {args.rows:,} memories, {args.rows // 10:,} expired (batches of {args.batch:,})"
    )
    for col in ("", "searches", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col)
    for label, lat in (("search alone", before), ("search during the sweep", during)):
        table.add_row(label, str(len(lat)), *(f"{percentile(lat, q):.1f}" for q in (50, 95, 99)))
    console.print(table)
    console.print(
        f"sweep: {changed:,} memories deleted in {wall:.1f} s = {changed / wall:,.0f} rows/s; {left[0]:,} memories left"
    )


if __name__ == "__main__":
    main()

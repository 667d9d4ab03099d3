"""Exact top-k under filters: a small user (and a session) inside a large org.

Loads N synthetic message vectors into one org (default 200,000; the target user owns 500 of them, in
5 sessions of 100; 2,000 other turns, 1 % of the index, are the assistant's), then for 100 queries compares
Engram's vector top-10 under a user filter, a session filter and a role filter with the exact top-10 (brute
force), and shows what a plain HNSW scan with the filter applied afterwards would have returned.

The role filter has no B-tree behind it: above ``ENGRAM_EXACT_SEARCH_LIMIT`` rows (``--exact-limit 0``)
the planner answers it from the HNSW index, the case of a large organization that is a small share of a
shared index.

With ``--exact-limit 0`` every filtered search takes the HNSW path instead of the exact scan of a small
filter: the case of a large organization that is a small share of a shared index (pgvector 0.8's
iterative index scan; before it, a second, wider scan and then an exact scan). The table says which
method answered.

    .venv/bin/python bench/exactness.py            # --rows 200000 --queries 100
    .venv/bin/python bench/exactness.py --exact-limit 20000 0
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from engramdb.config import Settings
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.schemas.search import SearchRequest
from engramdb.services.core.runtime import Runtime
from engramdb.services.search import hybrid as search
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database
from engramdb.storage.embedded import start_embedded
from engramdb.storage.migrate import migrate, prepare_vectors
from engramdb.storage.vectors import index_name

sys.path.insert(0, str(Path(__file__).parent))
console = Console()
MODEL = MiniLMEmbedder.model
WORDS = (
    "garden trip sister coffee violin marathon puppy paint museum budget recipe lake concert "
    "library camping birthday rent guitar yoga novel"
).split()


def load(url: str, org_id: uuid.UUID, user_id: uuid.UUID, other_user: uuid.UUID, rows: int) -> list[uuid.UUID]:
    """Sessions and messages straight into the tables (synthetic vectors made by the server)."""
    sessions = [uuid.uuid4() for _ in range(5)]
    filler = [uuid.uuid4() for _ in range(max(1, -(-(rows - 500) // 1000)))]
    with psycopg.connect(url, autocommit=True) as conn, Progress(console=console) as progress:
        for sid in sessions:
            conn.execute("INSERT INTO session (org_id, id, user_id) VALUES (%s, %s, %s)", (org_id, sid, user_id))
        for sid in filler:
            conn.execute("INSERT INTO session (org_id, id, user_id) VALUES (%s, %s, %s)", (org_id, sid, other_user))
        idx = index_name("message", MODEL)
        conn.execute(f"DROP INDEX IF EXISTS {idx}")  # build once at the end: much faster than row by row
        task = progress.add_task("load vectors", total=rows)
        plan = [(sid, 100) for sid in sessions] + [(sid, 1000) for sid in filler]
        loaded = 0
        for sid, count in plan:
            count = min(count, rows - loaded)
            if count <= 0:
                break
            conn.execute(
                """INSERT INTO message (org_id, id, session_id, seq, user_id, role, content, content_hash,
                                        occurred_at, embedding, embedding_model)
                   SELECT %s, gen_random_uuid(), %s, g, s.user_id, 'user', 'synthetic ' || g, '\\x00', now(),
                          (SELECT array_agg(random() - 0.5)::vector
                             FROM generate_series(1, 384) WHERE g > 0), %s
                   FROM generate_series(1, %s) g, session s WHERE s.org_id = %s AND s.id = %s""",
                (org_id, sid, MODEL, count, org_id, sid),
            )
            loaded += count
            progress.update(task, completed=loaded)
        started = time.perf_counter()
        prepare_vectors(url, MODEL, MiniLMEmbedder.dimensions, build_memory="2GB")
        conn.execute("ANALYZE message")
        console.print(f"HNSW index built over {loaded} vectors in {time.perf_counter() - started:.0f} s")
        # 1 % of the index, reachable by no B-tree: the role filter below.
        conn.execute("UPDATE message SET role = 'assistant' WHERE session_id = ANY(%s)", (filler[:2],))
        conn.execute("ANALYZE message")
    return sessions


async def run(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="engram-exact-"))
    url = start_embedded(data_dir, "engram")
    migrate(url)
    settings = Settings(database_url=url)
    db = Database.connect(settings, url=url)
    org, key = await keys.create_organization(db, name="exactness")
    caller = await keys.authenticate(db, key.api_key)
    user_id, other = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(url, autocommit=True) as conn:
        for uid in (user_id, other):
            conn.execute("INSERT INTO user_account (org_id, id) VALUES (%s, %s)", (org.id, uid))
    sessions = load(url, org.id, user_id, other, args.rows)
    rng = random.Random(7)
    queries = [" ".join(rng.sample(WORDS, 3)) for _ in range(args.queries)]
    embedder = MiniLMEmbedder()
    vectors = await embedder.embed_batch(queries, kind="query")
    filters: tuple[tuple[str, str, object, dict[str, object]], ...] = (
        ("user (500 rows)", "user_id", user_id, {"user_id": user_id}),
        ("session (100 rows)", "session_id", sessions[0], {"session_id": sessions[0]}),
        ("assistant turns (2,000 rows)", "role", "assistant", {"filters": {"role": ["assistant"]}}),
    )
    exact: dict[tuple[str, int], set[uuid.UUID]] = {}
    naive: dict[str, list[float]] = {label: [] for label, *_ in filters}
    with psycopg.connect(url) as conn:
        for i, vec in enumerate(vectors):
            literal = "[" + ",".join(f"{x:.7f}" for x in vec) + "]"
            for label, column, value, _ in filters:
                dist = f"(embedding::vector(384) <=> '{literal}'::vector(384))"
                where = f"org_id = %s AND {column} = %s AND embedding_model = '{MODEL}'"
                exact[label, i] = {
                    r[0]
                    for r in conn.execute(
                        f"SELECT id FROM message WHERE {where} ORDER BY {dist} + 0 LIMIT 10", (org.id, value)
                    )
                }
                # What an HNSW scan with the filter applied afterwards returns (pgvector 0.6's behaviour when
                # the planner takes the vector index): the filter is written so no B-tree can serve it.
                conn.execute("SET LOCAL hnsw.ef_search = 40")
                post_filtered = where.replace(f"{column} = %s", f"{column}::text = %s")
                plain = {
                    r[0]
                    for r in conn.execute(
                        f"SELECT id FROM message WHERE {post_filtered} ORDER BY {dist} LIMIT 10", (org.id, str(value))
                    )
                }
                conn.rollback()
                naive[label].append(len(plain & exact[label, i]) / 10)
    table = Table(title=f"vector top-10 vs exact top-10, {args.rows:,} vectors in one org, {args.queries} queries")
    for col in ("filter", "ENGRAM_EXACT_SEARCH_LIMIT", "Engram recall@10", "answered by", "p50 / p95 ms"):
        table.add_column(col)
    for limit in args.exact_limit or [settings.exact_search_limit]:
        rt = Runtime.build(settings.model_copy(update={"exact_search_limit": limit}), db)
        for label, _, _, scope in filters:
            recall, latencies, methods = [], [], Counter[str]()
            for i, query in enumerate(queries):
                req = SearchRequest(
                    query=query,
                    mode="vector",
                    types=["messages"],
                    top_k=10,
                    weights={"neighbor": 0.0, "name_match": 0.0, "session": 0.0},  # pure vector ranking
                    explain=True,
                    **scope,  # type: ignore[arg-type]
                )
                started = time.perf_counter()
                response, _ = await search.search(rt, caller, req)
                latencies.append((time.perf_counter() - started) * 1000)
                recall.append(len({r.id for r in response.results} & exact[label, i]) / 10)
                first = response.results[0].explanation if response.results else None
                methods[str(first.vector_method if first else None)] += 1
            latencies.sort()
            table.add_row(
                label,
                f"{limit:,}",
                f"{sum(recall) / len(recall):.3f}",
                ", ".join(f"{m} {n}" for m, n in sorted(methods.items())),
                f"{latencies[len(latencies) // 2]:.1f} / {latencies[int(len(latencies) * 0.95)]:.1f}",
            )
    for label, *_ in filters:
        table.add_row(label, "plain HNSW, filter after (ef_search 40)", f"{sum(naive[label]) / len(naive[label]):.3f}")
    console.print(table)
    console.print("latency in-process, query embedding included")
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--exact-limit", type=int, nargs="*", help="ENGRAM_EXACT_SEARCH_LIMIT values to measure (0: the HNSW path)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

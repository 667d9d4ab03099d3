"""Search latency at scale and ingest throughput, through the HTTP API.

Bulk-loads N synthetic memories (default 100,000; --rows 1000000 for the 1M figure) across 10 orgs of
1,000 users each, straight into the tables (random unit vectors: fine for latency), builds the HNSW index,
then measures POST /v1/search p50/p95/p99 at concurrency 1 and 8, org-wide and filtered to one user, and
finally ingest throughput of POST /v1/sessions/{id}/messages as a share of the embedder's raw rate, embedded
on write and with defer_embedding (until the server's background backfill has embedded every message). The
raw rate is the model alone, in this process, on the very texts the server embeds for those messages
(with the default ENGRAM_MESSAGE_VECTORS each message as itself and after the previous one, per request's
batch), measured on each run's own texts just before and just after that run, the run compared with the
mean of the two (the model's rate moves with the machine); and also on the bare message texts, the figure
earlier runs compared with.

    .venv/bin/python bench/scale.py                  # --rows 1000000 --queries 400
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from engramdb.config import Settings
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.services.conversation.vectors import MessageText, message_texts
from engramdb.services.maintenance.indexes import ensure_org_indexes
from engramdb.storage.embedded import start_embedded
from engramdb.storage.migrate import migrate, prepare_vectors
from engramdb.storage.vectors import index_name

sys.path.insert(0, str(Path(__file__).parent))
from _server import engram_server, percentile  # noqa: E402

console = Console()
MODEL = MiniLMEmbedder.model
WORDS = (
    "garden trip sister coffee violin marathon puppy paint museum budget recipe lake concert library "
    "camping birthday rent guitar yoga novel train doctor wedding football kitchen"
).split()


def bulk_load(url: str, org_id: uuid.UUID, rows: int, orgs: int = 10, users: int = 1000) -> list[uuid.UUID]:
    """Memories for ``orgs`` orgs (the first is the benchmark's), ``users`` users each; returns its users."""
    per_org = rows // orgs
    per_user = max(1, per_org // users)
    with psycopg.connect(url, autocommit=True) as conn, Progress(console=console) as progress:
        conn.execute(f"DROP INDEX IF EXISTS {index_name('memory', MODEL)}")  # one build at the end is faster
        task = progress.add_task("bulk load", total=per_org * orgs)
        bench_users: list[uuid.UUID] = []
        for n in range(orgs):
            oid = org_id if n == 0 else uuid.uuid4()
            if n:
                conn.execute("INSERT INTO organization (org_id, name) VALUES (%s, %s)", (oid, f"filler-{n}"))
            ids = [uuid.uuid4() for _ in range(users)]
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO user_account (org_id, id) VALUES (%s, %s)", [(oid, u) for u in ids])
            if n == 0:
                bench_users = ids
            conn.execute(
                """INSERT INTO memory (org_id, id, user_id, content, content_hash, embedding, embedding_model)
                   SELECT %s, gen_random_uuid(), u, 'synthetic memory ' || g, '\\x00',
                          (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, 384) WHERE g > 0), %s
                   FROM unnest(%s::uuid[]) u, generate_series(1, %s) g""",
                (oid, MODEL, ids, per_user),
            )
            progress.advance(task, per_user * users)
        started = time.perf_counter()
        prepare_vectors(url, MODEL, MiniLMEmbedder.dimensions, build_memory="2GB")
        conn.execute("VACUUM ANALYZE memory")  # as autovacuum would soon: GIN pending lists, visibility map
        console.print(f"HNSW index over {per_org * orgs:,} memories built in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        rows_limit = Settings.model_fields["org_index_rows"].default
        built = ensure_org_indexes(url, MODEL, MiniLMEmbedder.dimensions, rows=rows_limit, build_memory="2GB")
        if built:
            console.print(
                f"{len(built)} per-organization indexes (orgs over {rows_limit:,} rows) built in "
                f"{time.perf_counter() - started:.0f} s"
            )
    return bench_users


async def measure(base: str, key: str, bodies: list[dict[str, object]], concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue = list(bodies)

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            started = time.perf_counter()
            r = await client.post("/v1/search", json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            r.raise_for_status()

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        for body in bodies[:20]:  # warm-up
            await client.post("/v1/search", json=body)
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return latencies


def _texts_embedded(client: httpx.Client) -> float:
    """Passage texts the server has embedded so far (its /metrics, served to this loopback client)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('engram_embedding_texts_total{kind="passage"}'):
            return float(line.rpartition(" ")[2])
    return 0.0


def ingest_rate(base: str, key: str, texts: list[str]) -> tuple[float, float]:
    """Messages per second through the API, and the texts per second the server embedded meanwhile (with
    the default ``ENGRAM_MESSAGE_VECTORS`` a message is embedded as itself and in context, so more than one)."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        session = client.post("/v1/sessions", json={"external_user_id": "ingest"}).json()
        before = _texts_embedded(client)
        started = time.perf_counter()
        for i in range(0, len(texts), 100):
            batch = [{"role": "user", "content": t} for t in texts[i : i + 100]]
            # The write path alone: extraction runs in the background (bench/extraction.py measures it).
            body = {"messages": batch, "extract": False}
            client.post(f"/v1/sessions/{session['id']}/messages", json=body).raise_for_status()
        elapsed = time.perf_counter() - started
        return len(texts) / elapsed, (_texts_embedded(client) - before) / elapsed


def deferred_rate(base: str, key: str, url: str, texts: list[str]) -> tuple[float, float]:
    """The same messages sent with ``defer_embedding`` (stored at once, embedded by the server's background
    backfill): messages and texts per second from the first request to the moment none is left without a
    vector."""
    with (
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        session = client.post("/v1/sessions", json={"external_user_id": "deferred"}).json()
        before = _texts_embedded(client)
        started = time.perf_counter()
        for i in range(0, len(texts), 100):
            batch = [{"role": "user", "content": t} for t in texts[i : i + 100]]
            body = {"messages": batch, "extract": False, "defer_embedding": True}
            client.post(f"/v1/sessions/{session['id']}/messages", json=body).raise_for_status()
        # Cheap to ask (stops at the first row found) and not too often: the server's CPU is what is measured.
        pending = "SELECT EXISTS (SELECT 1 FROM message WHERE session_id = %s AND embedding_model IS NULL)"
        while (conn.execute(pending, (session["id"],)).fetchone() or (False,))[0]:
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        return len(texts) / elapsed, (_texts_embedded(client) - before) / elapsed


def same_texts_rate(embedder: MiniLMEmbedder, contents: list[str]) -> float:
    """Texts per second of the model alone on what the server embeds for ``contents`` sent as one session
    in requests of 100 (each request's texts in one call, as ``messages.add`` makes them)."""
    now = datetime.now(UTC)
    previous: tuple[str | None, str] | None = None
    batches = []
    for i in range(0, len(contents), 100):
        batch = []
        for content in contents[i : i + 100]:
            batch.append(MessageText(None, content, now, previous))
            previous = (None, content)
        batches.append(message_texts(batch)[0])
    started = time.perf_counter()
    for texts in batches:
        embedder._embed(texts)
    return sum(map(len, batches)) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--ingest", type=int, default=2000, help="messages sent for the ingest figure")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="engram-scale-"))
    url = start_embedded(data_dir, "engram")
    migrate(url)
    # The benchmark builds the per-organization indexes itself, before measuring, not the server's loop.
    # Every concurrent search is let in (ENGRAM_MAX_ACTIVE_REQUESTS), so the concurrency-8 figure is the
    # latency of 8 searches at once, not of the shedding bench/load.py measures.
    env = {"ENGRAM_DATABASE_URL": url, "ENGRAM_ORG_INDEX_ROWS": "0", "ENGRAM_MAX_ACTIVE_REQUESTS": "64"}
    with engram_server(None, None, env) as (base, key):
        with psycopg.connect(url) as conn:
            org_id = conn.execute("SELECT org_id FROM organization WHERE name = 'bench'").fetchone()[0]  # type: ignore[index]
        users = bulk_load(url, org_id, args.rows)
        rng = random.Random(11)
        queries = [" ".join(rng.sample(WORDS, 3)) for _ in range(args.queries)]
        table = Table(title=f"POST /v1/search over HTTP, {args.rows:,} memories in 10 orgs (types=memories, top_k=10)")
        for col in ("filter", "concurrency", "p50 ms", "p95 ms", "p99 ms", "queries/s"):
            table.add_column(col)
        for label, extra in (("org-wide", {}), ("one user", "user")):
            for concurrency in (1, 8):
                bodies = [
                    {
                        "query": q,
                        "types": ["memories"],
                        "top_k": 10,
                        **({"user_id": str(rng.choice(users))} if extra else {}),
                    }
                    for q in queries
                ]
                started = time.perf_counter()
                lat = asyncio.run(measure(base, key, bodies, concurrency))
                rate = len(lat) / (time.perf_counter() - started)
                table.add_row(
                    label,
                    str(concurrency),
                    f"{percentile(lat, 50):.1f}",
                    f"{percentile(lat, 95):.1f}",
                    f"{percentile(lat, 99):.1f}",
                    f"{rate:.0f}",
                )
        console.print(table)
        texts = [" ".join(rng.sample(WORDS, 8)) + f" number {i}" for i in range(args.ingest)]
        embedder = MiniLMEmbedder()
        embedder._embed(texts[:64])
        started = time.perf_counter()
        embedder._embed(texts)
        bare = len(texts) / (time.perf_counter() - started)
        # The model's own rate moves with the machine (a shared VM's neighbours): it is measured on each
        # run's own texts just before and just after that run, and the run compared with their mean.
        via_api, deferred = [t + " via api" for t in texts], [t + " deferred" for t in texts]
        before = same_texts_rate(embedder, via_api)
        api, embedded = ingest_rate(base, key, via_api)
        raw_api = (before + same_texts_rate(embedder, via_api)) / 2
        before = same_texts_rate(embedder, deferred)
        later, backfilled = deferred_rate(base, key, url, deferred)
        raw_deferred = (before + same_texts_rate(embedder, deferred)) / 2
        console.print(
            f"raw embedder on the server's texts, around each run: {raw_api:.0f} and {raw_deferred:.0f} texts/s; "
            f"{bare:.0f} on the bare messages"
        )
        console.print(
            f"ingest: through the API {api:.0f} messages/s, {embedded:.0f} texts/s embedded = "
            f"{embedded / raw_api:.0%} of the raw rate on the same texts ({embedded / bare:.0%} of the "
            "bare-message rate; batches of 100)"
        )
        console.print(
            f"ingest with defer_embedding, until the backfill is done: {later:.0f} messages/s, "
            f"{backfilled:.0f} texts/s embedded = {backfilled / raw_deferred:.0%} of the raw rate on the same "
            f"texts ({backfilled / bare:.0%} of the bare-message rate)"
        )


if __name__ == "__main__":
    main()

"""LoCoMo retrieval benchmark through the public HTTP API.

Ingests LoCoMo's locomo10.json (from the snap-research/LoCoMo repository, CC BY-NC 4.0; see
``locomo_path`` for where it is looked for) (each conversation a user, each LoCoMo session a session, each turn
a message with its speaker as `name`, the session's date as `occurred_at` and its `dia_id` in metadata),
then asks every question of categories 1-4 with POST /v1/search over that user's messages and scores
evidence Recall@1/5/10/20, NDCG@10 and all-evidence recall (every evidence turn in the top 10), overall and
per category, plus search latency over HTTP, sequential and at ``--concurrency`` (``top_k`` 20, as for
recall), and sequential at the API's default ``top_k`` 10, next to the median time
the same model takes to embed one question in this process (the yardstick of the latency target).

    .venv/bin/python bench/locomo.py                 # starts its own embedded server
    .venv/bin/python bench/locomo.py --mode vector   # or keyword; --url/--api-key for a running server
    .venv/bin/python bench/locomo.py --no-extract    # messages only (faster ingest; no memories to fuse)
    .venv/bin/python bench/locomo.py --url URL --api-key KEY --no-ingest   # a server that has LoCoMo already
    .venv/bin/python bench/locomo.py ... --ranks     # also where each evidence turn ranks in the top 50
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from _server import engram_server, percentile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# LoCoMo (Maharana et al., ACL 2024) comes from the snap-research/LoCoMo repository on GitHub,
# data/locomo10.json, under CC BY-NC 4.0 (research and evaluation only). Engram does not ship it.
LOCOMO_SOURCE = "the snap-research/LoCoMo repository on GitHub (data/locomo10.json, CC BY-NC 4.0)"
LOCOMO_ENV = "ENGRAM_LOCOMO"


def locomo_path(given: Path | None) -> Path:
    """Where LoCoMo is: ``--data``, else ``$ENGRAM_LOCOMO``, else ``../shared/data/locomo10.json`` beside the
    checkout (where this project's machines keep it); exits with what to do when it is in none of them."""
    candidates = [given] if given is not None else []
    if not candidates and os.environ.get(LOCOMO_ENV):
        candidates = [Path(os.environ[LOCOMO_ENV])]
    candidates = candidates or [ROOT.parent / "shared" / "data" / "locomo10.json", ROOT / "locomo10.json"]
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise SystemExit(
        f"LoCoMo not found (looked at {tried}). Download locomo10.json from {LOCOMO_SOURCE}, then pass "
        f"--data PATH/locomo10.json or set {LOCOMO_ENV}=PATH/locomo10.json."
    )


CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (1, 5, 10, 20)
DEFAULT_PASS = "search, sequential, top_k 10 (the default)"
DIA = re.compile(r"D\d+:\d+")
console = Console()


def session_date(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def turn_text(turn: dict[str, Any]) -> str:
    text = turn["text"]
    if turn.get("blip_caption"):
        text += f" [shares a photo: {turn['blip_caption']}]"
    return text


def sessions_of(conversation: dict[str, Any]) -> list[tuple[str, datetime, list[dict[str, Any]]]]:
    out = []
    for key, turns in conversation.items():
        match = re.fullmatch(r"session_(\d+)", key)
        if match and isinstance(turns, list) and turns:
            out.append((key, session_date(conversation[f"{key}_date_time"]), turns))
    return sorted(out, key=lambda s: int(s[0].split("_")[1]))


def message_batch(turns: list[dict[str, Any]], when: datetime) -> list[dict[str, Any]]:
    """LoCoMo turns as messages: the speaker as ``name``, the session's date, the ``dia_id`` in metadata."""
    return [
        {
            "role": "user",
            "name": t["speaker"],
            "content": turn_text(t),
            "occurred_at": when.isoformat(),
            "metadata": {"dia_id": t["dia_id"]},
        }
        for t in turns
    ]


def ingest(client: httpx.Client, samples: list[dict[str, Any]], progress: Progress, extract: bool) -> tuple[int, float]:
    """Write every turn; with ``extract`` also wait until the extraction jobs are done (memory-level recall
    needs their memories). Returns the turn count and the seconds the writes took (the jobs not included)."""
    total = sum(len(turns) for s in samples for _, _, turns in sessions_of(s["conversation"]))
    task = progress.add_task("ingest", total=total)
    started = time.perf_counter()
    for sample in samples:
        user = sample["sample_id"]
        for key, when, turns in sessions_of(sample["conversation"]):
            session = client.post("/v1/sessions", json={"external_user_id": user, "title": key}).json()
            for start in range(0, len(turns), 100):
                batch = message_batch(turns[start : start + 100], when)
                # Extraction is the API's default; search fuses the memories' source turns (weights.memory).
                r = client.post(f"/v1/sessions/{session['id']}/messages", json={"messages": batch, "extract": extract})
                r.raise_for_status()
                progress.advance(task, len(batch))
    elapsed = time.perf_counter() - started
    while extract and any(
        pages(client, "/v1/jobs", {"status": status, "kind": "engram.extract"}) for status in ("queued", "running")
    ):
        time.sleep(1.0)
    return total, elapsed


def pages(client: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of a cursor-paginated list."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = client.get(path, params={**params, "limit": 200, **({"cursor": cursor} if cursor else {})})
        items += page.raise_for_status().json()["data"]
        cursor = page.json().get("next_cursor")
        if not cursor:
            return items


def source_turns(client: httpx.Client, samples: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each memory's source turns (dia_ids, in the order of its ``source_message_ids``)."""
    dia_of: dict[str, str] = {}
    out: dict[str, list[str]] = {}
    for sample in samples:
        user = sample["sample_id"]
        for session in pages(client, "/v1/sessions", {"external_user_id": user}):
            for message in pages(client, f"/v1/sessions/{session['id']}/messages", {}):
                dia_of[message["id"]] = message["metadata"].get("dia_id")
        for memory in pages(client, "/v1/memories", {"external_user_id": user}):
            out[memory["id"]] = [dia_of[m] for m in memory["source_message_ids"] if m in dia_of]
    return out


def scored_questions(samples: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], set[str]]]:
    """(user, question, evidence turns) for every question of categories 1-4 (evidence may be empty)."""
    return [
        (s["sample_id"], q, {e for item in q.get("evidence", []) for e in DIA.findall(item)})
        for s in samples
        for q in s["qa"]
        if q.get("category") in CATEGORIES
    ]


Scores = dict[int, list[dict[str, float]]]


def evaluate(
    client: httpx.Client,
    samples: list[dict[str, Any]],
    args: argparse.Namespace,
    progress: Progress,
    sources: dict[str, list[str]] | None = None,
) -> tuple[Scores, list[float]]:
    """Ask every question once, in order; score the message hits, or with ``sources`` the memory hits mapped
    to their source turns (in rank order, each turn once)."""
    questions = scored_questions(samples)
    task = progress.add_task("search" if sources is None else "search memories", total=len(questions))
    scores: Scores = defaultdict(list)
    latencies: list[float] = []
    for user, qa, evidence in questions:
        progress.advance(task)
        if not evidence:
            continue
        body = {
            "query": qa["question"],
            "external_user_id": user,
            "types": ["messages"] if sources is None else ["memories"],
            "top_k": max(KS),
            "mode": args.mode,
        }
        started = time.perf_counter()
        r = client.post("/v1/search", json=body)
        latencies.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
        results = r.json()["results"]
        if sources is None:
            ranked = [res["metadata"].get("dia_id") for res in results]
        else:
            ranked = list(dict.fromkeys(d for res in results for d in sources.get(res["id"], [])))
        row = {f"R@{k}": len(evidence & set(ranked[:k])) / len(evidence) for k in KS}
        dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in evidence)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(evidence), 10)))
        row["NDCG@10"] = dcg / idcg
        row["all@10"] = float(evidence <= set(ranked[:10]))
        scores[qa["category"]].append(row)
    return scores, latencies


def repeat_latencies(
    client: httpx.Client,
    samples: list[dict[str, Any]],
    args: argparse.Namespace,
    threads: int,
    top_k: int,
    case: Callable[[str], str],
) -> list[float]:
    """Every question again, from ``threads`` threads, asking for ``top_k`` results. Each is sent in another
    case (``case``: ``str.lower`` or ``str.upper``): the model is uncased and the keyword side folds case, so the
    answer is the same, but the server's cache of recent query vectors (keyed by the exact text) does not
    hold it, and every search embeds its query as in the first pass."""
    bodies = [
        {"query": case(qa["question"]), "external_user_id": user, "types": ["messages"], "top_k": top_k}
        for user, qa, evidence in scored_questions(samples)
        if evidence
    ]

    def one(body: dict[str, Any]) -> float:
        started = time.perf_counter()
        client.post("/v1/search", json={**body, "mode": args.mode}).raise_for_status()
        return (time.perf_counter() - started) * 1000

    if threads == 1:
        return [one(body) for body in bodies]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, bodies))


def embed_times(samples: list[dict[str, Any]]) -> list[float]:
    """Milliseconds the default model takes to embed each question alone, in this process (run while the
    server is idle): the yardstick of the search latency target."""
    from engramdb.providers.minilm import MiniLMEmbedder

    embedder = MiniLMEmbedder()
    questions = [qa["question"] for _, qa, evidence in scored_questions(samples) if evidence]
    embedder._embed(questions[:20])  # load and warm the model
    times = []
    for question in questions:
        started = time.perf_counter()
        embedder._embed([question])
        times.append((time.perf_counter() - started) * 1000)
    return times


_STOP = frozenset(
    "the and for but are was were been did does what when where who why how which with from that this its his "
    "her their they she you your our him them about into after before during than then not yes there here have "
    "has had will would can could should may might just also very more most some any all each other such only "
    "own same too".split()
)
BANDS = ("1-10", "11-20", "21-50", ">50")


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2 and w not in _STOP}


def evidence_ranks(client: httpx.Client, samples: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Where each evidence turn ranks among the top 50 messages (per evidence turn, per category), and of
    those not in the top 50 how many share no content word with the question: what reranking could reach,
    and what only another way to the turn could."""
    text_of = {
        (s["sample_id"], t["dia_id"]): turn_text(t)
        for s in samples
        for _, _, turns in sessions_of(s["conversation"])
        for t in turns
    }
    bands: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(BANDS, 0))
    unshared: dict[int, int] = defaultdict(int)
    for user, qa, evidence in scored_questions(samples):
        if not evidence:
            continue
        body = {"query": qa["question"], "external_user_id": user, "types": ["messages"], "top_k": 50}
        r = client.post("/v1/search", json={**body, "mode": args.mode})
        r.raise_for_status()
        ranked = [res["metadata"].get("dia_id") for res in r.json()["results"]]
        for turn in evidence:
            rank = ranked.index(turn) + 1 if turn in ranked else None
            band = ">50" if rank is None else "1-10" if rank <= 10 else "11-20" if rank <= 20 else "21-50"
            bands[qa["category"]][band] += 1
            if rank is None and not _content_words(qa["question"]) & _content_words(text_of.get((user, turn), "")):
                unshared[qa["category"]] += 1
    table = Table(title="Where the evidence turns rank (top_k 50, messages; per evidence turn)")
    for col in ("category", "turns", *BANDS, "beyond 50: no word in common"):
        table.add_column(col, justify="right")
    out: dict[str, Any] = {}
    labelled = [(f"{c} {name}", [c]) for c, name in CATEGORIES.items()] + [("all (1-4)", list(CATEGORIES))]
    for label, cats in labelled:
        counts = {b: sum(bands[c][b] for c in cats) for b in BANDS}
        n, beyond, none = sum(counts.values()), counts[">50"], sum(unshared[c] for c in cats)
        out[label] = {"turns": n, **{b: counts[b] / n if n else 0.0 for b in BANDS}, "beyond_unshared": none}
        shares = (f"{counts[b] / n:.1%}" if n else "-" for b in BANDS)
        table.add_row(label, str(n), *shares, f"{none} of {beyond}")
    console.print(table)
    return out


def table_of(title: str, scores: Scores) -> dict[str, Any]:
    metrics = [f"R@{k}" for k in KS] + ["NDCG@10", "all@10"]
    table = Table(title=title)
    table.add_column("category")
    table.add_column("n", justify="right")
    for m in metrics:
        table.add_column(m, justify="right")
    summary: dict[str, Any] = {}
    rows = [(f"{c} {name}", scores.get(c, [])) for c, name in CATEGORIES.items()]
    rows.append(("all (1-4)", [r for c in CATEGORIES for r in scores.get(c, [])]))
    for label, items in rows:
        means = {m: sum(r[m] for r in items) / len(items) if items else float("nan") for m in metrics}
        summary[label] = {"n": len(items), **means}
        table.add_row(label, str(len(items)), *(f"{means[m]:.3f}" for m in metrics))
    console.print(table)
    return summary


def latency(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99)}


def report(
    scores: Scores,
    memory_scores: Scores | None,
    latencies: dict[str, list[float]],
    turns: int,
    ingest_s: float | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    result: dict[str, Any] = {"mode": args.mode}
    result["scores"] = table_of(f"LoCoMo evidence retrieval over HTTP, messages (mode={args.mode})", scores)
    if memory_scores is not None:
        title = f"LoCoMo evidence retrieval over HTTP, memories mapped to their source turns (mode={args.mode})"
        result["memory_scores"] = table_of(title, memory_scores)
    result["latency_ms"] = {name: latency(values) for name, values in latencies.items()}
    for name, lat in result["latency_ms"].items():
        console.print(
            f"{name}: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms "
            f"({len(latencies[name])} {'embeddings' if name.startswith('query') else 'searches over HTTP'})"
        )
    search, embed = result["latency_ms"]["search, sequential"], result["latency_ms"]["query embedding, in process"]
    console.print(f"search p95 / median query embedding: {search['p95'] / embed['p50']:.1f}x")
    default = result["latency_ms"].get(DEFAULT_PASS)
    if default is not None:
        console.print(f"at the default top_k 10: {default['p95'] / embed['p50']:.1f}x")
    if ingest_s is not None:
        rate = turns / ingest_s
        console.print(f"ingest: {turns} turns in {ingest_s:.1f} s ({rate:.0f} messages/s, embedded on write)")
        result["ingest_messages_per_s"] = rate
    result["load_average"] = os.getloadavg()
    console.print(f"load average at the end: {' '.join(f'{v:.2f}' for v in result['load_average'])}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help=f"locomo10.json (default: ${LOCOMO_ENV}, or ../shared/data/)")
    parser.add_argument("--url", help="a running Engram server (default: start one)")
    parser.add_argument("--api-key")
    parser.add_argument("--no-ingest", action="store_true", help="with --url: the server already holds LoCoMo")
    parser.add_argument("--no-extract", action="store_true", help="extraction off at ingest (the API default is on)")
    parser.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    parser.add_argument("--concurrency", type=int, default=8, help="the second, concurrent pass (0: none)")
    parser.add_argument("--conversations", type=int, default=0, help="only the first N conversations")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--ranks", action="store_true", help="also: where each evidence turn ranks in the top 50")
    args = parser.parse_args()
    if args.no_ingest and not args.url:
        parser.error("--no-ingest needs --url")
    samples = json.loads(locomo_path(args.data).read_text())
    if args.conversations:
        samples = samples[: args.conversations]
    turns, ingest_s = sum(len(t) for s in samples for _, _, t in sessions_of(s["conversation"])), None
    memory_scores = None
    # Every concurrent search is let in, so the concurrency pass measures 8 searches at once, not the
    # shedding bench/load.py measures (with --url, the server's own setting applies).
    env = {"ENGRAM_MAX_ACTIVE_REQUESTS": str(max(8, args.concurrency))}
    with (
        engram_server(args.url, args.api_key, env) as (base, key),
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client,
        Progress(console=console) as progress,
    ):
        if not args.no_ingest:
            turns, ingest_s = ingest(client, samples, progress, not args.no_extract)
        scores, sequential = evaluate(client, samples, args, progress)
        latencies = {"search, sequential": sequential}
        if args.concurrency:
            concurrent = repeat_latencies(client, samples, args, args.concurrency, max(KS), str.lower)
            latencies[f"search, concurrency {args.concurrency}"] = concurrent
        # The sequential figure above asks for top_k 20 (for R@20), which makes each retriever bring 100
        # candidates instead of 50; this is what a search with the API's default top_k 10 takes.
        latencies[DEFAULT_PASS] = repeat_latencies(client, samples, args, 1, 10, str.upper)
        if not args.no_extract or args.no_ingest:
            sources = source_turns(client, samples)
            if sources:
                memory_scores, _ = evaluate(client, samples, args, progress, sources)
        ranks = evidence_ranks(client, samples, args) if args.ranks else None
    latencies["query embedding, in process"] = embed_times(samples)
    result = report(scores, memory_scores, latencies, turns, ingest_s, args)
    if ranks is not None:
        result["evidence_ranks"] = ranks
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""LoCoMo retrieval benchmark through the public HTTP API.

Ingests LoCoMo's locomo10.json (from the snap-research/LoCoMo repository, CC BY-NC 4.0; see
``locomo_path`` for where it is looked for) (each conversation a user, each LoCoMo session a session, each turn
a message with its speaker as `name`, the session's date as `occurred_at` and its `dia_id` in metadata),
then asks every question of categories 1-4 with POST /v1/search over that user's messages and scores
evidence Recall@1/5/10/20 and NDCG@10, overall and per category, plus search latency over HTTP.

    .venv/bin/python bench/locomo.py                 # starts its own embedded server
    .venv/bin/python bench/locomo.py --mode vector   # or keyword; --url/--api-key for a running server
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


def ingest(client: httpx.Client, samples: list[dict[str, Any]], progress: Progress) -> tuple[int, float]:
    total = sum(len(turns) for s in samples for _, _, turns in sessions_of(s["conversation"]))
    task = progress.add_task("ingest", total=total)
    started = time.perf_counter()
    for sample in samples:
        user = sample["sample_id"]
        for key, when, turns in sessions_of(sample["conversation"]):
            session = client.post("/v1/sessions", json={"external_user_id": user, "title": key}).json()
            for start in range(0, len(turns), 100):
                batch = message_batch(turns[start : start + 100], when)
                # Message-level retrieval only: extraction (bench/extraction.py) would compete for the CPU.
                r = client.post(f"/v1/sessions/{session['id']}/messages", json={"messages": batch, "extract": False})
                r.raise_for_status()
                progress.advance(task, len(batch))
    return total, time.perf_counter() - started


def scored_questions(samples: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], set[str]]]:
    """(user, question, evidence turns) for every question of categories 1-4 (evidence may be empty)."""
    return [
        (s["sample_id"], q, {e for item in q.get("evidence", []) for e in DIA.findall(item)})
        for s in samples
        for q in s["qa"]
        if q.get("category") in CATEGORIES
    ]


def evaluate(
    client: httpx.Client, samples: list[dict[str, Any]], args: argparse.Namespace, progress: Progress
) -> tuple[dict[int, list[dict[str, float]]], list[float]]:
    questions = scored_questions(samples)
    task = progress.add_task("search", total=len(questions))
    scores: dict[int, list[dict[str, float]]] = defaultdict(list)
    latencies: list[float] = []
    for user, qa, evidence in questions:
        progress.advance(task)
        if not evidence:
            continue
        body = {
            "query": qa["question"],
            "external_user_id": user,
            "types": ["messages"],
            "top_k": max(KS),
            "mode": args.mode,
        }
        started = time.perf_counter()
        r = client.post("/v1/search", json=body)
        latencies.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
        ranked = [res["metadata"].get("dia_id") for res in r.json()["results"]]
        row = {f"R@{k}": len(evidence & set(ranked[:k])) / len(evidence) for k in KS}
        dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:10]) if d in evidence)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(evidence), 10)))
        row["NDCG@10"] = dcg / idcg
        scores[qa["category"]].append(row)
    return scores, latencies


def report(
    scores: dict[int, list[dict[str, float]]],
    latencies: list[float],
    turns: int,
    ingest_s: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    metrics = [f"R@{k}" for k in KS] + ["NDCG@10"]
    table = Table(title=f"LoCoMo evidence retrieval over HTTP (mode={args.mode})")
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
    lat = {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99)}
    console.print(
        f"search latency over HTTP: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, "
        f"p99 {lat['p99']:.1f} ms ({len(latencies)} queries, sequential)"
    )
    console.print(f"ingest: {turns} turns in {ingest_s:.1f} s ({turns / ingest_s:.0f} messages/s, embedded on write)")
    return {"mode": args.mode, "scores": summary, "latency_ms": lat, "ingest_messages_per_s": turns / ingest_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help=f"locomo10.json (default: ${LOCOMO_ENV}, or ../shared/data/)")
    parser.add_argument("--url", help="a running Engram server (default: start one)")
    parser.add_argument("--api-key")
    parser.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    parser.add_argument("--conversations", type=int, default=0, help="only the first N conversations")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    samples = json.loads(locomo_path(args.data).read_text())
    if args.conversations:
        samples = samples[: args.conversations]
    with (
        engram_server(args.url, args.api_key) as (base, key),
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client,
        Progress(console=console) as progress,
    ):
        turns, ingest_s = ingest(client, samples, progress)
        scores, latencies = evaluate(client, samples, args, progress)
    result = report(scores, latencies, turns, ingest_s, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Extraction benchmark on LoCoMo: what the extractor draws from conversations, measured against LoCoMo's own
reference observations, and how well the memories it makes retrieve the evidence of the LoCoMo questions.

    .venv/bin/python bench/extraction.py                      # all 10 conversations, a fresh embedded server
    .venv/bin/python bench/extraction.py --conversations 3    # a subset
    .venv/bin/python bench/extraction.py --llm-url http://localhost:11434/v1 --llm-model qwen2.5:7b
    .venv/bin/python bench/extraction.py --url URL --api-key KEY  # a running server with none of these users

Steps:

1. Offline throughput: ``OfflineExtractor`` in-process over every turn, per session in batches of 40 with
   the 4 earlier turns as context (as the extraction job does); the extractor alone, best of 3 passes.
2. End to end through the HTTP API: each conversation a user, each session a session, each turn a message
   (as bench/locomo.py ingests them) with extraction on; wall time from the first write until no
   ``engram.extract`` job of these sessions is queued or running gives messages/s (ingest, which embeds
   every message, plus extraction). ``--llm-*`` become the server's ``ENGRAM_LLM_*`` settings.
3. Every memory of each user is fetched; ``source_message_ids`` map back to LoCoMo ``dia_id`` turns.
4. Quality against the observations (LoCoMo's per-session, per-speaker facts, each tied to its turns).
   Matching: observations and memories are embedded in-process with the default embedder (MiniLM, unit
   vectors), and an observation matches a memory of the same conversation when their cosine is at least
   the threshold (0.6 is the headline figure; 0.5 and 0.7 show the sensitivity). Reported, pooled over
   conversations: observation recall (observations whose best memory matches), the same with provenance
   (a matching memory also has the observation's turn among its sources), unmatched memories (no
   observation matches them), duplicates per 100 memories (memories with an earlier memory of the same
   user at cosine >= 0.9) and memories per 100 messages.
5. Evidence retrieval for the questions of categories 1-4: ``POST /v1/search`` over memories (top 20
   hits); the hits' source turns, taken in rank order (within one memory in conversation order) and
   deduplicated, form a ranked turn list, and R@k = share of the evidence turns among its first k turns,
   so R@10 reads 10 turns, like message-level R@10. "top-10 hits, all turns" counts every source turn of the
   first 10 hits (uncut; the mean number of turns that is is printed). Message-level search runs on the
   same server with bench/locomo.py's own scoring, so both figures come from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from _server import engram_server  # noqa: E402
from locomo import (  # noqa: E402
    CATEGORIES,
    DIA,
    KS,
    LOCOMO_ENV,
    locomo_path,
    message_batch,
    scored_questions,
    sessions_of,
    turn_text,
)
from locomo import evaluate as evaluate_messages  # noqa: E402

from engramdb.providers.extraction import Turn  # noqa: E402
from engramdb.providers.extraction.offline import OfflineExtractor  # noqa: E402
from engramdb.providers.minilm import MiniLMEmbedder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BATCH, CONTEXT_TURNS = 40, 4  # as services.extraction
THRESHOLDS = (0.5, 0.6, 0.7)
HEADLINE = 0.6
DUPLICATE = 0.9
TOP_HITS = 20
console = Console()

Sample = dict[str, Any]


# 1. The offline extractor alone -------------------------------------------------------------------


def locomo_turns(sample: Sample) -> list[list[Turn]]:
    """Each session's turns as the extraction job sees them: role user, the speaker as name."""
    return [
        [Turn(id=uuid.uuid4(), role="user", name=t["speaker"], content=turn_text(t), occurred_at=when) for t in turns]
        for _, when, turns in sessions_of(sample["conversation"])
    ]


async def offline_throughput(samples: list[Sample], progress: Progress, passes: int = 3) -> dict[str, Any]:
    sessions = [session for sample in samples for session in locomo_turns(sample)]
    messages = sum(len(s) for s in sessions)
    extractor = OfflineExtractor()
    task = progress.add_task("offline extractor", total=messages * passes)
    times, candidates = [], 0
    for _ in range(passes):
        spent, candidates = 0.0, 0
        for turns in sessions:
            for start in range(0, len(turns), BATCH):
                batch, context = turns[start : start + BATCH], turns[max(0, start - CONTEXT_TURNS) : start]
                began = time.perf_counter()
                extraction = await extractor.extract(batch, context=context)
                spent += time.perf_counter() - began
                candidates += len(extraction.memories)
                progress.advance(task, len(batch))
        times.append(spent)
    best = min(times)
    return {
        "messages": messages,
        "seconds_best": best,
        "messages_per_s": messages / best,
        "candidate_memories": candidates,
        "passes": passes,
    }


# 2. Ingest with extraction on, and wait for the jobs ---------------------------------------------


def ingest(client: httpx.Client, samples: list[Sample], progress: Progress) -> dict[str, Any]:
    """Write every turn; returns message id -> dia_id, the session and job ids, and the turn count."""
    total = sum(len(turns) for s in samples for _, _, turns in sessions_of(s["conversation"]))
    task = progress.add_task("ingest (extract on)", total=total)
    dia_of: dict[str, str] = {}
    sessions: set[str] = set()
    jobs: list[str] = []
    for sample in samples:
        for key, when, turns in sessions_of(sample["conversation"]):
            body = {"external_user_id": sample["sample_id"], "title": key}
            session = client.post("/v1/sessions", json=body).raise_for_status().json()
            sessions.add(session["id"])
            for start in range(0, len(turns), 100):
                batch = message_batch(turns[start : start + 100], when)
                r = client.post(f"/v1/sessions/{session['id']}/messages", json={"messages": batch, "extract": True})
                answer = r.raise_for_status().json()
                dia_of.update({msg["id"]: msg["metadata"]["dia_id"] for msg in answer["data"]})
                if answer.get("job"):
                    jobs.append(answer["job"]["id"])
                progress.advance(task, len(batch))
    return {"messages": total, "dia_of": dia_of, "sessions": sessions, "jobs": jobs}


def pages(client: httpx.Client, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of a cursor-paginated list."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = client.get(path, params=query).raise_for_status().json()
        items += page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def drain(client: httpx.Client, sessions: set[str], jobs: int, progress: Progress) -> None:
    """Wait until no extraction job of ``sessions`` is queued or running."""
    task = progress.add_task("extraction jobs", total=jobs)
    while True:
        pending = [
            job
            for status in ("queued", "running")
            for job in pages(client, "/v1/jobs", {"status": status, "kind": "engram.extract"})
            if job["session_id"] in sessions
        ]
        progress.update(task, completed=jobs - len(pending))
        if not pending:
            return
        time.sleep(1.0)


def job_summary(client: httpx.Client, job_ids: list[str]) -> dict[str, Any]:
    """Statuses, providers, what the jobs did, and their summed run time."""
    statuses: Counter[str] = Counter()
    providers: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    busy = 0.0
    errors: list[str] = []
    for job_id in job_ids:
        job = client.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        statuses[job["status"]] += 1
        providers[job["provider"] or "?"] += 1
        actions.update({k: v for k, v in job["result"].items() if isinstance(v, int) and k != "batches"})
        if job["error"]:
            errors.append(job["error"][:300])
        if job["started_at"] and job["finished_at"]:
            started, finished = (datetime.fromisoformat(job[k]) for k in ("started_at", "finished_at"))
            busy += (finished - started).total_seconds()
    return {
        "statuses": dict(statuses),
        "providers": dict(providers),
        "actions": dict(sorted(actions.items())),
        "job_seconds": busy,
        "errors": errors[:5],
    }


# 3. The memories and their source turns -----------------------------------------------------------


def fetch_memories(client: httpx.Client, samples: list[Sample], dia_of: dict[str, str]) -> dict[str, list[Sample]]:
    """Each user's memories, oldest first, each with ``turns``: its source dia_ids in conversation order."""
    out: dict[str, list[Sample]] = {}
    for sample in samples:
        items = pages(client, "/v1/memories", {"external_user_id": sample["sample_id"]})
        for item in items:
            found = {dia_of[m] for m in item["source_message_ids"] if m in dia_of}
            item["turns"] = sorted(found, key=lambda d: tuple(int(x) for x in d[1:].split(":")))
        out[sample["sample_id"]] = sorted(items, key=lambda m: (m["created_at"], m["id"]))
    return out


# 4. Quality against the observations ---------------------------------------------------------------


def observations(sample: Sample) -> list[tuple[str, set[str]]]:
    """(text, its dia_ids) for every observation of every session and speaker."""
    out = []
    for per_speaker in sample["observation"].values():
        for items in per_speaker.values():
            out += [(item[0], set(DIA.findall(str(item[1])))) for item in items]
    return out


def score_conversation(
    obs: list[tuple[str, set[str]]], mems: list[Sample], o: np.ndarray, m: np.ndarray
) -> tuple[dict[str, int], dict[str, list[tuple[float, str, str]]]]:
    """Counts for one conversation (``o``, ``m``: unit vectors of observations and memories) and the
    material for failure examples: each observation's and memory's best counterpart, and duplicates."""
    if not mems:
        row = {"observations": len(obs), "memories": 0, "turn_covered": 0, "duplicates": 0}
        return row | {f"{kind}@{t}": 0 for kind in ("matched", "sourced", "unmatched") for t in THRESHOLDS}, {}
    sim = o @ m.T
    best_obs, best_mem = sim.max(axis=1), sim.max(axis=0)
    row = {"observations": len(obs), "memories": len(mems)}
    for t in THRESHOLDS:
        sourced = (
            any(sim[i, j] >= t and turns & set(mems[j]["turns"]) for j in range(len(mems)))
            for i, (_, turns) in enumerate(obs)
        )
        row[f"matched@{t}"] = int((best_obs >= t).sum())
        row[f"sourced@{t}"] = sum(sourced)
        row[f"unmatched@{t}"] = int((best_mem < t).sum())
    covered = {d for x in mems for d in x["turns"]}
    row["turn_covered"] = sum(1 for _, turns in obs if turns & covered)
    same = np.triu(m @ m.T, k=1)  # same[i, j], i < j: memory j against the earlier memory i
    earlier = same.max(axis=0)
    row["duplicates"] = int((earlier >= DUPLICATE).sum())
    found = {
        "misses": [(float(best_obs[i]), obs[i][0], mems[int(sim[i].argmax())]["content"]) for i in range(len(obs))],
        "strays": [(float(best_mem[j]), mems[j]["content"], obs[int(sim[:, j].argmax())][0]) for j in range(len(mems))],
        "duplicates": [
            (float(earlier[j]), mems[int(same[:, j].argmax())]["content"], mems[j]["content"])
            for j in np.flatnonzero(earlier >= DUPLICATE)
        ],
    }
    return row, found


async def quality(
    samples: list[Sample], memories: dict[str, list[Sample]], messages: int, progress: Progress
) -> dict[str, Any]:
    """Observations against memories, per conversation, embedded in-process with the default embedder.
    ``reference`` scores the raw turns, each as if it were a memory, to show what the metric gives a
    store that keeps every message verbatim."""
    embedder = MiniLMEmbedder()
    task = progress.add_task("embed observations, memories, turns", total=len(samples))
    counts: Counter[str] = Counter()
    reference: Counter[str] = Counter()
    per_conversation: dict[str, dict[str, int]] = {}
    found: dict[str, list[tuple[float, str, str]]] = defaultdict(list)
    for sample in samples:
        obs, mems = observations(sample), memories[sample["sample_id"]]
        o = np.array(await embedder.embed_batch([text for text, _ in obs]), dtype=np.float32)
        m = np.array(await embedder.embed_batch([x["content"] for x in mems]), dtype=np.float32)
        row, material = score_conversation(obs, mems, o, m)
        counts.update(row)
        raw = [
            {"content": turn_text(t), "turns": [t["dia_id"]]}
            for _, _, ts in sessions_of(sample["conversation"])
            for t in ts
        ]
        r = np.array(await embedder.embed_batch([x["content"] for x in raw]), dtype=np.float32)
        reference.update(score_conversation(obs, raw, o, r)[0])
        per_conversation[sample["sample_id"]] = row
        for kind, items in material.items():
            found[kind] += items
        progress.advance(task)
    return {
        "totals": dict(counts),
        "reference": dict(reference),
        "messages": messages,
        "per_conversation": per_conversation,
        "misses": sorted(found["misses"]),
        "strays": sorted(found["strays"]),
        "duplicates": sorted(found["duplicates"], reverse=True),
    }


# 5. Memory-level evidence retrieval ---------------------------------------------------------------


def evaluate_memories(
    client: httpx.Client, samples: list[Sample], memories: dict[str, list[Sample]], mode: str, progress: Progress
) -> tuple[dict[int, list[dict[str, float]]], list[float]]:
    """Per category, R@k over the ranked turn list of the memory hits; also the uncut top-10 variant."""
    turns_of = {m["id"]: m["turns"] for mems in memories.values() for m in mems}
    questions = scored_questions(samples)
    task = progress.add_task("search memories", total=len(questions))
    scores: dict[int, list[dict[str, float]]] = defaultdict(list)
    widths: list[float] = []
    for user, qa, evidence in questions:
        progress.advance(task)
        if not evidence:
            continue
        body = {"query": qa["question"], "external_user_id": user, "types": ["memories"], "top_k": TOP_HITS}
        hits = client.post("/v1/search", json={**body, "mode": mode}).raise_for_status().json()["results"]
        sources = [turns_of.get(hit["id"], []) for hit in hits]
        ranked = list(dict.fromkeys(d for turns in sources for d in turns))
        top10 = {d for turns in sources[:10] for d in turns}
        widths.append(len(top10))
        row = {f"R@{k}": len(evidence & set(ranked[:k])) / len(evidence) for k in KS}
        row["top10"] = len(evidence & top10) / len(evidence)
        scores[qa["category"]].append(row)
    return scores, widths


# 6. Report ---------------------------------------------------------------------------------------


def mean(rows: list[dict[str, float]], key: str) -> float:
    return sum(r[key] for r in rows) / len(rows) if rows else float("nan")


def throughput_table(offline: dict[str, Any], run: dict[str, Any], jobs: dict[str, Any], extractor: str) -> None:
    n = run["messages"]
    rows = [
        ("offline extractor alone, in-process (best of 3)", offline["messages"], offline["seconds_best"]),
        (f"end to end over HTTP: ingest + extraction ({extractor})", n, run["wall_s"]),
        ("  of which ingest (messages embedded on write)", n, run["ingest_s"]),
        ("  extraction jobs, summed run time", n, jobs["job_seconds"]),
    ]
    table = Table(title="Extraction throughput")
    for col in ("what", "messages", "seconds", "messages/s"):
        table.add_column(col, justify="left" if col == "what" else "right")
    for label, messages, seconds in rows:
        table.add_row(label, str(messages), f"{seconds:.2f}", f"{messages / max(seconds, 1e-9):.1f}")
    console.print(table)
    console.print(f"jobs: {jobs['statuses']} by {jobs['providers']}; consolidation: {jobs['actions']}")
    if jobs["errors"]:
        console.print(f"[red]job errors[/]: {jobs['errors']}")


def retrieval_table(levels: dict[str, tuple[dict[int, list[dict[str, float]]], str | None]]) -> dict[str, Any]:
    """One row per level; a level given a key (``top10``) fills only the R@10 columns, with that key."""
    table = Table(title="LoCoMo evidence retrieval, same server and questions")
    for col in ("level", "n", *(f"{name} R@10" for name in CATEGORIES.values()), *(f"R@{k}" for k in KS)):
        table.add_column(col, justify="left" if col == "level" else "right")
    out: dict[str, Any] = {}
    for label, (scores, only) in levels.items():
        everything = [r for c in CATEGORIES for r in scores.get(c, [])]
        r10 = only or "R@10"
        per_cat = {name: mean(scores.get(c, []), r10) for c, name in CATEGORIES.items()}
        overall: dict[str, float | None] = {}
        for k in KS:
            key = r10 if k == 10 else None if only else f"R@{k}"
            overall[f"R@{k}"] = None if key is None else mean(everything, key)
        out[label] = {"n": len(everything), "R@10 by category": per_cat, **overall}
        cells = ["-" if v is None else f"{v:.3f}" for v in (*per_cat.values(), *overall.values())]
        table.add_row(label, str(len(everything)), *cells)
    console.print(table)
    return out


def share(part: float, whole: float) -> float:
    return part / whole if whole else float("nan")


def quality_tables(q: dict[str, Any], extractor: str) -> dict[str, Any]:
    tot, ref, messages = q["totals"], q["reference"], q["messages"]
    n_obs, n_mem = tot["observations"], tot["memories"]
    table = Table(title=f"Extraction vs LoCoMo observations ({extractor}; MiniLM cosine, pooled)")
    for col in ("store", "cosine >=", "observation recall", "recall with provenance", "unmatched memories"):
        table.add_column(col, justify="left" if col == "store" else "right")
    by_threshold: dict[str, dict[str, float]] = {}
    for label, counts, n in ((f"memories ({extractor})", tot, n_mem), ("reference: raw turns", ref, ref["memories"])):
        for t in THRESHOLDS:
            row = {
                "observation_recall": share(counts[f"matched@{t}"], n_obs),
                "recall_with_provenance": share(counts[f"sourced@{t}"], n_obs),
                "unmatched_memory_share": share(counts[f"unmatched@{t}"], n),
            }
            by_threshold[f"{label} @ {t}"] = row
            mark = " (headline)" if t == HEADLINE else ""
            table.add_row(label if t == THRESHOLDS[0] else "", f"{t}{mark}", *(f"{v:.3f}" for v in row.values()))
        table.add_section()
    console.print(table)
    figures = {
        "observations": n_obs,
        "memories": n_mem,
        "messages": messages,
        "memories_per_100_messages": 100 * share(n_mem, messages),
        "duplicates_per_100_memories": 100 * share(tot["duplicates"], n_mem),
        "observation_turns_with_a_memory": share(tot["turn_covered"], n_obs),
    }
    console.print(
        f"{n_obs} observations, {n_mem} memories from {messages} messages "
        f"({figures['memories_per_100_messages']:.1f} per 100 messages); "
        f"duplicates (cosine >= {DUPLICATE}): {figures['duplicates_per_100_memories']:.1f} per 100 memories; "
        f"observations whose turn is a source of some memory: {figures['observation_turns_with_a_memory']:.3f}"
    )
    per = Table(title=f"Per conversation at cosine {HEADLINE}")
    for col in ("conversation", "observations", "memories", "recall", "with provenance", "unmatched", "dup/100"):
        per.add_column(col, justify="right")
    for sample_id, row in q["per_conversation"].items():
        per.add_row(
            sample_id,
            str(row["observations"]),
            str(row["memories"]),
            f"{share(row[f'matched@{HEADLINE}'], row['observations']):.3f}",
            f"{share(row[f'sourced@{HEADLINE}'], row['observations']):.3f}",
            f"{share(row[f'unmatched@{HEADLINE}'], row['memories']):.3f}",
            f"{100 * share(row['duplicates'], row['memories']):.1f}",
        )
    console.print(per)
    return {"by_threshold": by_threshold, **figures, "per_conversation": q["per_conversation"]}


def print_examples(q: dict[str, Any], n: int) -> dict[str, list[list[Any]]]:
    """A few of each failure: observations no memory matches, memories that match nothing, duplicates."""
    rng = random.Random(7)
    picked = {
        "unmatched observations (best memory)": [x for x in q["misses"] if x[0] < HEADLINE],
        f"observations matched just above {HEADLINE} (the memory)": [
            x for x in q["misses"] if HEADLINE <= x[0] < HEADLINE + 0.05
        ],
        "unmatched memories (best observation)": [x for x in q["strays"] if x[0] < HEADLINE],
        "duplicates (earlier memory)": q["duplicates"],
    }
    out = {}
    for title, items in picked.items():
        chosen = rng.sample(items, min(n, len(items)))
        out[title] = [[round(c, 3), a, b] for c, a, b in chosen]
        console.print(f"[bold]{title}[/]: {len(items)}, e.g.")
        for c, a, b in chosen:
            console.print(f"  {c:.2f}  {a!r}\n        ~ {b!r}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help=f"locomo10.json (default: ${LOCOMO_ENV}, or ../shared/data/)")
    parser.add_argument("--url", help="a running Engram server (default: start one)")
    parser.add_argument("--api-key")
    parser.add_argument("--conversations", type=int, default=0, help="only the first N conversations")
    parser.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid", help="search mode")
    parser.add_argument("--llm-url", help="ENGRAM_LLM_BASE_URL for the spawned server (an OpenAI-compatible API)")
    parser.add_argument("--llm-model", help="ENGRAM_LLM_MODEL")
    parser.add_argument("--llm-api-key", help="ENGRAM_LLM_API_KEY")
    parser.add_argument("--examples", type=int, default=8, help="failure examples to print per kind")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    samples = json.loads(locomo_path(args.data).read_text())[: args.conversations or None]
    env = {
        name: value
        for name, value in (
            ("ENGRAM_LLM_BASE_URL", args.llm_url),
            ("ENGRAM_LLM_MODEL", args.llm_model),
            ("ENGRAM_LLM_API_KEY", args.llm_api_key),
        )
        if value
    }
    with Progress(console=console) as progress:
        offline = asyncio.run(offline_throughput(samples, progress))
        with (
            engram_server(args.url, args.api_key, env) as (base, key),
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client,
        ):
            started = time.perf_counter()
            written = ingest(client, samples, progress)
            ingest_s = time.perf_counter() - started
            drain(client, written["sessions"], len(written["jobs"]), progress)
            wall_s = time.perf_counter() - started
            jobs = job_summary(client, written["jobs"])
            memories = fetch_memories(client, samples, written["dia_of"])
            message_scores, _ = evaluate_messages(client, samples, argparse.Namespace(mode=args.mode), progress)
            memory_scores, widths = evaluate_memories(client, samples, memories, args.mode, progress)
        q = asyncio.run(quality(samples, memories, written["messages"], progress))

    extractor = ", ".join(sorted({m.get("extractor") or "?" for ms in memories.values() for m in ms})) or "none"
    run = {"messages": written["messages"], "wall_s": wall_s, "ingest_s": ingest_s}
    throughput_table(offline, run, jobs, extractor)
    quality_figures = quality_tables(q, extractor)
    retrieval = retrieval_table(
        {
            "messages": (message_scores, None),
            "memories -> turns, first k": (memory_scores, None),
            "memories: top-10 hits, all turns": (memory_scores, "top10"),
        }
    )
    console.print(f"top-10 memory hits cover {sum(widths) / max(len(widths), 1):.1f} source turns on average")
    failures = print_examples(q, args.examples)
    if args.json:
        result = {
            "conversations": len(samples),
            "extractor": extractor,
            "offline_throughput": offline,
            "end_to_end": {**run, "messages_per_s": run["messages"] / wall_s},
            "jobs": jobs,
            "quality": {"matching": f"MiniLM cosine >= threshold (headline {HEADLINE})", **quality_figures},
            "retrieval": retrieval,
            "mean_turns_in_top10_memories": sum(widths) / max(len(widths), 1),
            "examples": failures,
        }
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Documents benchmark: the project's own virtual environment as a repository, through the HTTP API.

The corpus is a real one every checkout has: the `.py`, `.md` and `.rst` files of the packages installed in
.venv (site-packages, without `__pycache__`), thousands of files. The benchmark

1. syncs them into one repository (POST /v1/repositories, then POST /v1/repositories/{id}/files in
   calls that respect the documented per-call limits) and reports files and MB ingested, documents and MB
   per minute, chunks embedded per second, the share of the time spent embedding, and skipped files by
   reason;
2. syncs the unchanged corpus again and prunes with every path kept: both must embed and delete nothing;
3. asks the questions of bench/documents_questions.json (each names the file that answers it) with
   POST /v1/search over the repository's chunks (and its documents), and reports Recall@5/10 and MRR of
   the right file for each search mode.

The share of time in embedding is estimated: the embedder's raw rate is measured in this process on the
chunk texts of a sample of the corpus (cut as the server cuts them), and share = chunks embedded / raw rate
/ ingest wall time.

Cost: on two cores about 0.6 MB of source a minute (~25 chunks/s), so `--limit-files 800` (12.6 MB: the
questions' files, then other files of their packages, the distractors that matter) takes ~25 minutes and
the whole corpus (~150 MB) several hours. A re-sync of an unchanged corpus takes seconds.

    .venv/bin/python bench/documents.py                        # the whole corpus, fresh embedded server
    .venv/bin/python bench/documents.py --limit-files 800      # a sample, always with the questions' files
    .venv/bin/python bench/documents.py --modes hybrid --json out.json
    .venv/bin/python bench/documents.py --url http://host:8000 --api-key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from engramdb import limits

sys.path.insert(0, str(Path(__file__).parent))
from _server import engram_server, percentile  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SITE_PACKAGES = ROOT / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
QUESTIONS = Path(__file__).parent / "documents_questions.json"
SUFFIXES = (".py", ".md", ".rst")
KS = (5, 10)
MB = 1_000_000
console = Console(width=None if sys.stdout.isatty() else 120)  # a log file gets whole tables


@dataclass
class SourceFile:
    path: str  # relative to the corpus root, with forward slashes
    size: int


@dataclass
class SyncRun:
    """What one pass over the corpus sent and what the server answered."""

    wall_s: float = 0.0
    calls: int = 0
    bytes_sent: int = 0
    call_s: list[float] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    local_skips: Counter[str] = field(default_factory=Counter)

    def actions(self) -> Counter[str]:
        return Counter(r["action"] for r in self.results)

    def chunks(self, key: str) -> int:
        return sum(int((r.get("chunks") or {}).get(key, 0)) for r in self.results)

    def embedded(self) -> int:
        """Chunks whose vector was computed (servers that do not report it: the chunks added)."""
        reported = any("embedded" in (r.get("chunks") or {}) for r in self.results)
        return self.chunks("embedded" if reported else "added")

    def kept_paths(self) -> list[str]:
        return [r["path"] for r in self.results if r["action"] != "skipped"]

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["action"] == "failed"]

    def skipped(self) -> Counter[str]:
        """Skipped files by reason, the file's own name taken out of the reason so that reasons group."""
        reasons = Counter(
            str(r.get("reason") or "no reason given").replace(repr(r["path"]), "<file>").replace(r["path"], "<file>")
            for r in self.results
            if r["action"] == "skipped"
        )
        return reasons + self.local_skips


# --- the corpus ----------------------------------------------------------------------------------------


def walk(root: Path) -> list[SourceFile]:
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(SUFFIXES):
                full = Path(folder) / name
                if full.is_file():
                    out.append(SourceFile(full.relative_to(root).as_posix(), full.stat().st_size))
    return out


def select(files: list[SourceFile], wanted: set[str], limit: int, seed: int, sample: str) -> list[SourceFile]:
    """Every file a question names, then up to ``limit`` (0: all) a seeded random sample of the rest: with
    ``sample="packages"`` the other files of the questions' packages first (the distractors that matter),
    with ``"random"`` any file."""
    if not limit or limit >= len(files):
        return files
    rng = random.Random(seed)
    named = [f for f in files if f.path in wanted]
    rest = [f for f in files if f.path not in wanted]
    rng.shuffle(rest)
    if sample == "packages":
        packages = {p.split("/", 1)[0] for p in wanted}
        rest.sort(key=lambda f: f.path.split("/", 1)[0] not in packages)  # stable: still shuffled within
    return sorted(named + rest[: max(0, limit - len(named))], key=lambda f: f.path)


def wire_file(root: Path, f: SourceFile) -> dict[str, str]:
    """The file as a sync call carries it: its text, or its bytes in base64 when they are not UTF-8 text
    (a NUL would make the whole call invalid; as bytes, the server skips the one file)."""
    data = (root / f.path).read_bytes()
    try:
        text = data.decode("utf-8")
        if "\x00" not in text:
            return {"path": f.path, "content": text}
    except UnicodeDecodeError:
        pass
    return {"path": f.path, "content_base64": base64.b64encode(data).decode("ascii")}


def batches(files: list[SourceFile], max_files: int, max_bytes: int) -> Iterator[list[SourceFile]]:
    batch: list[SourceFile] = []
    size = 0
    for f in files:
        if batch and (len(batch) >= max_files or size + f.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(f)
        size += f.size
    if batch:
        yield batch


# --- ingest, re-sync, prune ----------------------------------------------------------------------------


def sync(
    client: httpx.Client, repo_id: str, root: Path, files: list[SourceFile], args: argparse.Namespace, label: str
) -> SyncRun:
    run = SyncRun()
    sendable = []
    for f in files:
        if f.size > args.batch_bytes:  # could never fit one call: say so rather than send a refused request
            run.local_skips["larger than one sync call (not sent)"] += 1
        else:
            sendable.append(f)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task(label, total=sum(f.size for f in sendable))
        started = time.perf_counter()
        for batch in batches(sendable, args.batch_files, args.batch_bytes):
            r = send(client, repo_id, root, batch, run)
            if r.status_code < 400:
                run.results.extend(r.json()["results"])
            else:  # one bad file should not hide the others: find it by sending them one at a time
                for f in batch:
                    alone = send(client, repo_id, root, [f], run)
                    if alone.status_code < 400:
                        run.results.extend(alone.json()["results"])
                    else:
                        run.results.append({"path": f.path, "action": "failed", "reason": problem(alone)})
            run.bytes_sent += sum(f.size for f in batch)
            progress.advance(task, sum(f.size for f in batch))
        run.wall_s = time.perf_counter() - started
    return run


def send(client: httpx.Client, repo_id: str, root: Path, batch: list[SourceFile], run: SyncRun) -> httpx.Response:
    body = json.dumps({"files": [wire_file(root, f) for f in batch]}, ensure_ascii=False).encode()
    url, headers = f"/v1/repositories/{repo_id}/files", {"content-type": "application/json"}
    started = time.perf_counter()
    try:
        r = client.post(url, content=body, headers=headers)
    except httpx.TransportError:  # a server closes the connection after a 500: a sync may be sent again
        r = client.post(url, content=body, headers=headers)
    run.call_s.append(time.perf_counter() - started)
    run.calls += 1
    return r


def problem(r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail") or r.json().get("title")
    except ValueError:
        detail = r.text
    return f"HTTP {r.status_code}: {str(detail)[:300]}"


def prune(client: httpx.Client, repo_id: str, paths: list[str]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    r = client.post(f"/v1/repositories/{repo_id}/prune", json={"keep_paths": paths})
    r.raise_for_status()
    return time.perf_counter() - started, list(r.json().get("deleted_paths", []))


def embedder_rate(root: Path, files: list[SourceFile], sample: int, seed: int) -> tuple[float, int]:
    """Chunks per second of the bundled embedder, alone in this process, on the chunks of ``sample`` files
    cut as the server cuts them (title, path and headings included in the embedded text)."""
    from engramdb.providers.documents import chunk_document, chunk_embedding_text, detect_content_type, parse
    from engramdb.providers.minilm import MiniLMEmbedder

    texts: list[str] = []
    for f in random.Random(seed).sample(files, min(sample, len(files))):
        data = (root / f.path).read_bytes()
        try:
            parsed = parse(data, detect_content_type(f.path, None, data), f.path)
            chunks = chunk_document(parsed)
        except Exception:  # whatever the server would skip, the probe skips too
            continue
        texts += [chunk_embedding_text(parsed.title, f.path, c.heading_path, c.text) for c in chunks]
    texts = texts[:2000]
    if not texts:
        return float("nan"), 0
    embedder = MiniLMEmbedder()

    async def timed() -> float:
        await embedder.warm()
        started = time.perf_counter()
        await embedder.embed_batch(texts, kind="passage")
        return time.perf_counter() - started

    return len(texts) / asyncio.run(timed()), len(texts)


# --- retrieval -----------------------------------------------------------------------------------------


def rank_of(paths: list[str | None], right: set[str]) -> int | None:
    return next((i + 1 for i, p in enumerate(paths) if p in right), None)


def evaluate(
    client: httpx.Client, repo_id: str, questions: list[dict[str, Any]], args: argparse.Namespace
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Per (type, mode): Recall@5/10 and MRR@10 over hits (a hit's file is its path), plus, for chunks,
    recall over the first 5/10 distinct files of a deeper list; and the misses of the first pair."""
    runs = [(t, m) for t in args.types for m in args.modes]
    figures: dict[str, dict[str, Any]] = {}
    misses: list[dict[str, Any]] = []
    with Progress(console=console) as progress:
        task = progress.add_task("search", total=len(runs) * len(questions))
        for kind, mode in runs:
            rows: list[dict[str, float]] = []
            latencies: list[float] = []
            for q in questions:
                right = {q["file"], *q.get("also", [])}
                body = {
                    "query": q["question"],
                    "types": [kind],
                    "top_k": args.depth if kind == "chunks" else max(KS),
                    "mode": mode,
                    "filters": {"repository_id": repo_id},
                }
                started = time.perf_counter()
                r = client.post("/v1/search", json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                if r.status_code >= 400:
                    raise SystemExit(f"search refused ({r.status_code}): {r.text[:1000]}")
                paths = [hit.get("path") for hit in r.json()["results"]]
                distinct = list(dict.fromkeys(paths))
                rank, file_rank = rank_of(paths, right), rank_of(distinct, right)
                row = {f"R@{k}": float(rank is not None and rank <= k) for k in KS}
                row["MRR@10"] = 1 / rank if rank and rank <= max(KS) else 0.0
                row.update({f"files@{k}": float(file_rank is not None and file_rank <= k) for k in KS})
                rows.append(row)
                if (kind, mode) == runs[0] and (rank is None or rank > min(KS)):
                    misses.append({**q, "hit_rank": rank, "file_rank": file_rank, "files": distinct[:3]})
                progress.advance(task)
            keys = list(rows[0]) if rows else []
            figures[f"{kind}/{mode}"] = {
                "n": len(rows),
                **{k: sum(r[k] for r in rows) / len(rows) for k in keys},
                "latency_ms_p50": percentile(latencies, 50),
                "latency_ms_p95": percentile(latencies, 95),
            }
    return figures, misses


# --- report --------------------------------------------------------------------------------------------


def ingest_figures(run: SyncRun, rate: float, probe_chunks: int) -> dict[str, Any]:
    actions = run.actions()
    documents = actions["added"] + actions["changed"] + actions["unchanged"]
    minutes = run.wall_s / 60
    embedded = run.embedded()
    embed_s = embedded / rate if rate == rate and rate > 0 else float("nan")
    return {
        "files_sent": len(run.results),
        "documents": documents,
        "mb_sent": run.bytes_sent / MB,
        "calls": run.calls,
        "wall_s": run.wall_s,
        "documents_per_min": documents / minutes if minutes else float("nan"),
        "mb_per_min": run.bytes_sent / MB / minutes if minutes else float("nan"),
        "chunks_embedded": embedded,
        "chunks_per_s": embedded / run.wall_s if run.wall_s else float("nan"),
        "call_s_p50": percentile(run.call_s, 50),
        "call_s_max": max(run.call_s, default=float("nan")),
        "embedder_raw_chunks_per_s": rate,
        "embedder_probe_chunks": probe_chunks,
        "embedding_share_estimated": embed_s / run.wall_s if run.wall_s else float("nan"),
        "actions": dict(actions),
        "skipped": dict(run.skipped().most_common()),
        "failed": [{"path": r["path"], "reason": r["reason"]} for r in run.failed()],
    }


def print_ingest(ingest: dict[str, Any]) -> None:
    table = Table(title="Ingest (repository sync over HTTP)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("files sent", f"{ingest['files_sent']:,} in {ingest['calls']:,} calls")
    table.add_row("documents stored", f"{ingest['documents']:,}")
    table.add_row("MB sent", f"{ingest['mb_sent']:.1f}")
    table.add_row("wall time", f"{ingest['wall_s']:.1f} s")
    table.add_row("documents / min", f"{ingest['documents_per_min']:,.0f}")
    table.add_row("MB / min", f"{ingest['mb_per_min']:.2f}")
    table.add_row("chunks embedded", f"{ingest['chunks_embedded']:,}")
    table.add_row("chunks / s", f"{ingest['chunks_per_s']:.1f}")
    table.add_row("sync call p50 / max", f"{ingest['call_s_p50']:.2f} s / {ingest['call_s_max']:.2f} s")
    table.add_row(
        "embedder raw rate (in-process probe)",
        f"{ingest['embedder_raw_chunks_per_s']:.1f} chunks/s on {ingest['embedder_probe_chunks']:,} chunks",
    )
    table.add_row("share of time embedding (estimated)", f"{ingest['embedding_share_estimated']:.0%}")
    console.print(table)
    if ingest["skipped"]:
        skipped = Table(title="Skipped files")
        skipped.add_column("reason")
        skipped.add_column("files", justify="right")
        for reason, n in ingest["skipped"].items():
            skipped.add_row(reason, str(n))
        console.print(skipped)
    if ingest["failed"]:
        console.print(f"[red]{len(ingest['failed'])} files failed[/] (the call that carried them was refused):")
        for f in ingest["failed"]:
            console.print(f"  {f['path']}: {f['reason']}")


def resync_figures(run: SyncRun, prune_s: float, deleted: list[str]) -> dict[str, Any]:
    actions = run.actions()
    expected = {"unchanged", "skipped", "failed"}  # failures are reported with the ingest
    return {
        "wall_s": run.wall_s,
        "files_sent": len(run.results),
        "actions": dict(actions),
        "chunks_embedded": run.embedded(),
        "chunks_removed": run.chunks("removed"),
        "all_unchanged": set(actions) <= expected,
        "prune_s": prune_s,
        "pruned": len(deleted),
    }


def print_resync(resync: dict[str, Any]) -> None:
    ok = resync["all_unchanged"] and resync["chunks_embedded"] == 0 and resync["pruned"] == 0
    verdict = "[green]ok[/]" if ok else "[red]FAILED[/]"
    console.print(
        f"re-sync of the unchanged corpus: {resync['files_sent']:,} files in {resync['wall_s']:.1f} s, "
        f"actions {resync['actions']}, {resync['chunks_embedded']} chunks embedded, "
        f"{resync['chunks_removed']} removed; prune keeping every path: {resync['prune_s']:.2f} s, "
        f"{resync['pruned']} deleted — {verdict}"
    )


def print_retrieval(figures: dict[str, dict[str, Any]], misses: list[dict[str, Any]], examples: int) -> None:
    table = Table(title="Retrieval of the file that answers each question")
    for column in ("type/mode", "n", "R@5", "R@10", "MRR@10", "files@5", "files@10", "p50 ms", "p95 ms"):
        table.add_column(column, justify="left" if column == "type/mode" else "right", no_wrap=True)
    for name, f in figures.items():
        files = [f"{f[k]:.3f}" if name.startswith("chunks") else "–" for k in ("files@5", "files@10")]
        table.add_row(
            name,
            str(f["n"]),
            f"{f['R@5']:.3f}",
            f"{f['R@10']:.3f}",
            f"{f['MRR@10']:.3f}",
            *files,
            f"{f['latency_ms_p50']:.1f}",
            f"{f['latency_ms_p95']:.1f}",
        )
    console.print(table)
    console.print("R@k: the right file among the first k hits; files@k: among the first k distinct files of the hits")
    if misses and examples:
        console.print(f"[bold]{len(misses)} questions not answered in the first 5 hits[/] ({next(iter(figures))}):")
        for m in misses[:examples]:
            console.print(
                f"  {m['question']}\n    want {m['file']} (hit {m['hit_rank']}, file {m['file_rank']}); "
                f"first files: {m['files']}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=SITE_PACKAGES, help="the corpus (default: .venv site-packages)")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--url", help="a running Engram server (default: start one)")
    parser.add_argument("--api-key")
    parser.add_argument(
        "--limit-files", type=int, default=0, help="ingest N files (default: all; the questions' files always)"
    )
    parser.add_argument(
        "--sample",
        choices=["packages", "random"],
        default="packages",
        help="--limit-files fills up with the questions' packages first (default), or with any files",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the --limit-files sample and the embedder probe")
    parser.add_argument(
        "--batch-files", type=int, default=20, help=f"files per sync call (at most {limits.MAX_SYNC_FILES})"
    )
    parser.add_argument("--batch-bytes", type=int, default=limits.MAX_SYNC_BYTES, help="content bytes per sync call")
    parser.add_argument(
        "--modes", nargs="+", choices=["hybrid", "vector", "keyword"], default=["hybrid", "vector", "keyword"]
    )
    parser.add_argument("--types", nargs="+", choices=["chunks", "documents"], default=["chunks", "documents"])
    parser.add_argument("--depth", type=int, default=50, help="chunk hits asked for (distinct-file recall)")
    parser.add_argument("--probe-files", type=int, default=60, help="files whose chunks time the raw embedder")
    parser.add_argument("--examples", type=int, default=15, help="misses to print")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    if not 1 <= args.batch_files <= limits.MAX_SYNC_FILES or not 1 <= args.batch_bytes <= limits.MAX_SYNC_BYTES:
        parser.error(
            f"a sync call carries 1 to {limits.MAX_SYNC_FILES} files and at most {limits.MAX_SYNC_BYTES} bytes"
        )
    questions = json.loads(args.questions.read_text())
    corpus = walk(args.root)
    known = {f.path for f in corpus}
    absent = sorted({q["file"] for q in questions} - known)
    if absent:
        raise SystemExit(f"questions name files not in the corpus: {absent}")
    wanted = {p for q in questions for p in (q["file"], *q.get("also", []))}
    files = select(corpus, wanted, args.limit_files, args.seed, args.sample)
    console.print(
        f"corpus {args.root}: {len(corpus):,} files, {sum(f.size for f in corpus) / MB:.1f} MB; "
        f"ingesting {len(files):,} ({sum(f.size for f in files) / MB:.1f} MB); {len(questions)} questions"
    )
    started = time.perf_counter()
    with (
        engram_server(args.url, args.api_key) as (base, key),
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=900) as client,
    ):
        r = client.post("/v1/repositories", json={"name": f"site-packages {time.strftime('%Y-%m-%d %H:%M:%S')}"})
        r.raise_for_status()
        repo_id = r.json()["id"]
        first = sync(client, repo_id, args.root, files, args, "ingest")
        again = sync(client, repo_id, args.root, files, args, "re-sync")
        prune_s, deleted = prune(client, repo_id, again.kept_paths())
        figures, misses = evaluate(client, repo_id, questions, args)
    rate, probe_chunks = embedder_rate(args.root, files, args.probe_files, args.seed)
    result = {
        "corpus": {"root": str(args.root), "files": len(corpus), "mb": sum(f.size for f in corpus) / MB},
        "ingest": ingest_figures(first, rate, probe_chunks),
        "resync": resync_figures(again, prune_s, deleted),
        "retrieval": figures,
        "misses": misses,
        "total_s": time.perf_counter() - started,
    }
    print_ingest(result["ingest"])
    print_resync(result["resync"])
    print_retrieval(figures, misses, args.examples)
    console.print(f"total {result['total_s']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Offloaded contexts benchmark: compression ratio and speed, restore speed, and search latency with contexts.

Material that lives on every machine:

* the LoCoMo transcripts: each session of the ten conversations of locomo10.json as one context (a
  transcript an agent moves out of its window). LoCoMo is from the snap-research/LoCoMo repository on
  GitHub (data/locomo10.json), under CC BY-NC 4.0 (research and evaluation only); Engram does not ship it;
* source and docs from the project's own virtual environment: the `.py`, `.md`, `.rst` and `.txt` files of
  site-packages, each file one context, up to `--limit-mb`, and one 16 MiB bundle of them (the largest
  context the API takes).

It reports:

1. the codec alone (in this process): ratio, compress and decompress MB/s of zstandard at levels 1, 3, 6,
   9 and 19 per corpus, the measurement the service's level (3) rests on;
2. through the HTTP API of a fresh `engramdb serve` (or `--url`): offload MB/s (one client, one request
   at a time: compression, the summary, the embedding and the insert), the stored ratio as the server
   reports it, restore MB/s (GET …/content, every byte checked against its SHA-256) and the 16 MiB bundle
   both ways;
3. search latency, p50 and p95, of `POST /v1/search` with `types: ["messages", "memories", "contexts"]`
   for LoCoMo's questions, over everything offloaded.

    .venv/bin/python bench/offload.py                     # fresh embedded server, 24 MB of source
    .venv/bin/python bench/offload.py --limit-mb 8 --questions 100 --json out.json
    .venv/bin/python bench/offload.py --url http://host:8420 --api-key KEY
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import zstandard

sys.path.insert(0, str(Path(__file__).parent))
from _server import engram_server, percentile  # noqa: E402

from engramdb import limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# LoCoMo (Maharana et al., ACL 2024): data/locomo10.json of the snap-research/LoCoMo repository on GitHub,
# under CC BY-NC 4.0 (research and evaluation only). Engram does not ship it.
LOCOMO_SOURCE = "snap-research/LoCoMo on GitHub (data/locomo10.json, CC BY-NC 4.0)"
SITE_PACKAGES = ROOT / ".venv" / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
SUFFIXES = (".py", ".md", ".rst", ".txt")
LEVELS = (1, 3, 6, 9, 19)
MB = 1_000_000


@dataclass(frozen=True)
class Item:
    name: str
    data: bytes
    content_type: str


def locomo_path(given: Path | None) -> Path:
    """``--data``, else ``$ENGRAM_LOCOMO``, else ``../shared/data/locomo10.json`` beside the checkout."""
    path = given or Path(os.environ.get("ENGRAM_LOCOMO", ROOT.parent / "shared" / "data" / "locomo10.json"))
    if not path.is_file():
        raise SystemExit(f"LoCoMo not found at {path}: download locomo10.json from {LOCOMO_SOURCE}, pass --data")
    return path


def locomo_items(path: Path) -> tuple[list[Item], list[str]]:
    """Each LoCoMo session as a transcript, and the questions."""
    raw = json.loads(path.read_text())
    items, questions = [], []
    for conversation in raw:
        talk = conversation["conversation"]
        keys = [k for k, v in talk.items() if re.fullmatch(r"session_\d+", k) and isinstance(v, list) and v]
        for key in sorted(keys, key=lambda k: int(k.split("_")[1])):
            lines = [f"# {conversation['sample_id']} {key} ({talk.get(key + '_date_time', '')})"]
            lines += [f"{turn['speaker']}: {turn['text']}" for turn in talk[key]]
            items.append(Item(f"{conversation['sample_id']}-{key}.txt", "\n".join(lines).encode(), "text/plain"))
        questions += [str(qa["question"]) for qa in conversation.get("qa", []) if qa.get("question")]
    return items, questions


def source_items(limit_bytes: int, seed: int = 7) -> list[Item]:
    """Source and docs files of site-packages, shuffled (fixed seed), up to ``limit_bytes`` in all."""
    files = sorted(
        p
        for p in SITE_PACKAGES.rglob("*")
        if p.suffix in SUFFIXES and p.is_file() and "__pycache__" not in p.parts and 0 < p.stat().st_size
    )
    random.Random(seed).shuffle(files)
    out, total = [], 0
    for path in files:
        data = path.read_bytes()
        if total + len(data) > limit_bytes:
            break
        kind = "text/markdown" if path.suffix == ".md" else "text/x-python" if path.suffix == ".py" else "text/plain"
        out.append(Item(str(path.relative_to(SITE_PACKAGES)), data, kind))
        total += len(data)
    return out


def bundle(items: list[Item]) -> Item:
    """One context of exactly MAX_CONTEXT_BYTES, of source files end to end."""
    data = b"".join(item.data for item in items)
    while len(data) < limits.MAX_CONTEXT_BYTES:
        data += data
    return Item("bundle.txt", data[: limits.MAX_CONTEXT_BYTES], "text/plain")


@dataclass
class CodecRow:
    corpus: str
    level: int
    mb: float
    ratio: float
    compress_mb_s: float
    decompress_mb_s: float


def codec(corpus: str, items: list[Item]) -> list[CodecRow]:
    rows = []
    total = sum(len(i.data) for i in items)
    for level in LEVELS:
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True)
        started = time.perf_counter()
        frames = [compressor.compress(i.data) for i in items]
        compress_s = time.perf_counter() - started
        decompressor = zstandard.ZstdDecompressor()
        started = time.perf_counter()
        for frame in frames:
            decompressor.decompress(frame)
        decompress_s = time.perf_counter() - started
        stored = sum(map(len, frames))
        rows.append(
            CodecRow(corpus, level, total / MB, total / stored, total / MB / compress_s, total / MB / decompress_s)
        )
    return rows


def dictionary(items: list[Item], size: int = 65_536) -> tuple[float, float]:
    """The level-3 ratio of the second half of ``items`` without and with a dictionary trained on the first
    half: what a per-organization dictionary would buy (the service uses none; see docs/benchmarks.md)."""
    half = len(items) // 2
    train, test = [i.data for i in items[:half]], [i.data for i in items[half:]]
    trained = zstandard.train_dictionary(size, train)
    total = sum(map(len, test))
    plain = zstandard.ZstdCompressor(level=3)
    with_dict = zstandard.ZstdCompressor(level=3, dict_data=trained)
    return total / sum(len(plain.compress(d)) for d in test), total / sum(len(with_dict.compress(d)) for d in test)


@dataclass
class ApiRow:
    corpus: str
    contexts: int
    mb: float
    ratio: float
    offload_mb_s: float
    offload_per_s: float
    offload_p50_ms: float
    offload_p95_ms: float
    restore_mb_s: float
    restore_per_s: float
    summaries: dict[str, int]


def through_api(client: httpx.Client, corpus: str, items: list[Item]) -> tuple[ApiRow, list[str]]:
    ids, took, original, stored, sources = [], [], 0, 0, {}
    started = time.perf_counter()
    for item in items:
        t0 = time.perf_counter()
        r = client.post(
            "/v1/contexts",
            content=item.data,
            params={"filename": item.name, "tags": [corpus]},
            headers={"Content-Type": item.content_type},
        )
        took.append(time.perf_counter() - t0)
        r.raise_for_status()
        ctx = r.json()["context"]
        ids.append(ctx["id"])
        original += ctx["original_bytes"]
        stored += ctx["stored_bytes"]
        sources[ctx["summary_source"]] = sources.get(ctx["summary_source"], 0) + 1
    offload_s = time.perf_counter() - started
    started = time.perf_counter()
    for item, context_id in zip(items, ids, strict=True):
        with client.stream("GET", f"/v1/contexts/{context_id}/content") as response:
            response.raise_for_status()
            digest = hashlib.sha256()
            for piece in response.iter_bytes():
                digest.update(piece)
        if digest.digest() != hashlib.sha256(item.data).digest():
            raise SystemExit(f"{item.name}: the restore is not byte-exact")
    restore_s = time.perf_counter() - started
    total = sum(len(i.data) for i in items)
    row = ApiRow(
        corpus,
        len(items),
        total / MB,
        original / stored,
        total / MB / offload_s,
        len(items) / offload_s,
        percentile([t * 1000 for t in took], 50),
        percentile([t * 1000 for t in took], 95),
        total / MB / restore_s,
        len(items) / restore_s,
        sources,
    )
    return row, ids


def search_latency(client: httpx.Client, questions: list[str]) -> dict[str, float]:
    took, with_contexts = [], 0
    for question in questions:
        body = {"query": question[: limits.MAX_QUERY_CHARS], "types": ["messages", "memories", "contexts"], "top_k": 10}
        t0 = time.perf_counter()
        r = client.post("/v1/search", json=body)
        took.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        with_contexts += any(hit["type"] == "context" for hit in r.json()["results"])
    return {
        "searches": len(took),
        "p50_ms": percentile(took, 50),
        "p95_ms": percentile(took, 95),
        "share_with_a_context_hit": with_contexts / max(1, len(took)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="locomo10.json (default: $ENGRAM_LOCOMO, or ../shared/data/)")
    parser.add_argument("--limit-mb", type=float, default=24.0, help="MB of site-packages source to offload")
    parser.add_argument("--questions", type=int, default=200, help="LoCoMo questions to search with")
    parser.add_argument("--url")
    parser.add_argument("--api-key")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    load = os.getloadavg()
    locomo, questions = locomo_items(locomo_path(args.data))
    source = source_items(int(args.limit_mb * MB))
    big = bundle(source)
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    print(
        f"LoCoMo: {len(locomo)} session transcripts, {sum(len(i.data) for i in locomo) / MB:.2f} MB ({LOCOMO_SOURCE})"
    )
    print(f"site-packages: {len(source)} files, {sum(len(i.data) for i in source) / MB:.2f} MB")

    codec_rows = codec("locomo", locomo) + codec("site-packages", source)
    print("\ncodec alone (zstandard, one frame per context, checksummed)")
    print(f"{'corpus':<14}{'level':>6}{'MB':>8}{'ratio':>8}{'compress MB/s':>15}{'decompress MB/s':>17}")
    for c in codec_rows:
        print(
            f"{c.corpus:<14}{c.level:>6}{c.mb:>8.2f}{c.ratio:>8.2f}{c.compress_mb_s:>15.1f}{c.decompress_mb_s:>17.1f}"
        )

    dictionaries = {corpus: dictionary(items) for corpus, items in (("locomo", locomo), ("site-packages", source))}
    for corpus, (plain, trained) in dictionaries.items():
        print(f"{corpus}: level 3 {plain:.2f}x, with a 64 KiB dictionary trained on the other half {trained:.2f}x")

    with engram_server(args.url, args.api_key) as (base, key):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers, timeout=300) as client:
            api_rows = []
            for corpus, items in (("locomo", locomo), ("site-packages", source), ("16 MiB bundle", [big])):
                row, _ = through_api(client, corpus, items)
                api_rows.append(row)
            search = search_latency(client, questions[: args.questions])
    print("\nthrough the API (one client, sequential; restores checked byte for byte)")
    print(
        f"{'corpus':<15}{'contexts':>9}{'MB':>8}{'ratio':>7}{'offload MB/s':>13}{'/s':>7}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'restore MB/s':>13}{'/s':>7}"
    )
    for a in api_rows:
        print(
            f"{a.corpus:<15}{a.contexts:>9}{a.mb:>8.2f}{a.ratio:>7.2f}{a.offload_mb_s:>13.2f}{a.offload_per_s:>7.1f}"
            f"{a.offload_p50_ms:>8.0f}{a.offload_p95_ms:>8.0f}{a.restore_mb_s:>13.1f}{a.restore_per_s:>7.1f}"
            f"   summaries {a.summaries}"
        )
    print(
        f"\nsearch with contexts: {search['searches']} LoCoMo questions, p50 {search['p50_ms']:.0f} ms, "
        f"p95 {search['p95_ms']:.0f} ms; {search['share_with_a_context_hit']:.0%} had a context among the top 10"
    )
    after = os.getloadavg()
    print(f"load average after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")
    if args.json:
        figures: dict[str, Any] = {
            "load_before": load,
            "load_after": after,
            "codec": [asdict(c) for c in codec_rows],
            "api": [asdict(a) for a in api_rows],
            "search": search,
            "dictionary": dictionaries,
        }
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

"""Chunking benchmark: how fast documents of different shapes are cut into chunks (no embedding).

Three synthetic texts of ``--mb`` megabytes each (seeded, so every run cuts the same text): paragraphs with
sentence ends, short lines, and one line of words with no break but spaces (a log or a minified export).
It prints each one's seconds, chunks and chunks per second. ``--window N`` sets the most text handed to the
splitter at once (``providers.documents.chunk.WINDOW_CHARS``; a huge value turns the windows off), so two
runs compare it, e.g. under ``farm-bench --vs``:

    .venv/bin/python bench/chunking.py
    .venv/bin/python bench/chunking.py --mb 4 --window 1000000000
"""

from __future__ import annotations

import argparse
import random
import time

from engramdb.providers.documents import chunk as chunking
from engramdb.providers.documents import chunk_document, parse

WORDS = (
    "the of memory agent postgres vector search retrieval session message fact graph entity document chunk "
    "tenant organization retention policy user team key audit"
).split()


def texts(megabytes: float, seed: int = 7) -> dict[str, str]:
    rng = random.Random(seed)
    size = int(megabytes * 1_000_000)

    def words(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    paragraphs, lines, line = [], [], []
    while sum(map(len, paragraphs)) < size:
        paragraphs.append(". ".join(words(rng.randint(8, 20)) for _ in range(rng.randint(3, 8))) + ".")
    while sum(map(len, lines)) < size:
        lines.append(words(rng.randint(4, 12)))
    while sum(map(len, line)) < size:
        line.append(words(1000))
    return {"paragraphs": "\n\n".join(paragraphs), "short lines": "\n".join(lines), "one line": " ".join(line)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=1.0, help="megabytes of each text (default 1)")
    parser.add_argument("--window", type=int, default=None, help="characters handed to the splitter at once")
    args = parser.parse_args()
    if args.window is not None:
        chunking.WINDOW_CHARS = args.window
    for name, text in texts(args.mb).items():
        parsed = parse(text.encode(), "text/plain", "bench.txt")
        started = time.perf_counter()
        chunks = chunk_document(parsed)
        took = time.perf_counter() - started
        rate = len(chunks) / took
        print(f"{name:12} {len(text) / 1e6:5.2f} MB  {took:6.2f} s  {len(chunks):6} chunks  {rate:6.0f}/s")


if __name__ == "__main__":
    main()

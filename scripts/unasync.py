#!/usr/bin/env python3
"""Generate the SDK's sync client (src/engramdb/sdk/_sync) from its async one (src/engramdb/sdk/_async).

The async code is the only one written by hand (CONVENTIONS: no hand-written sync/async twins); this
rewrites its tokens the way httpcore's unasync does, module by module and package by package, so
`_sync/x/y.py` mirrors `_async/x/y.py`, and removes sync modules whose async source is gone.
`--check` exits 1 when the generated files are stale or left over.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "engramdb" / "sdk" / "_async"
TARGET = ROOT / "src" / "engramdb" / "sdk" / "_sync"
HEADER = "# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.\n"

# Order matters: longer names before their prefixes.
SUBSTITUTIONS: list[tuple[str, str]] = [
    (r"\bhttpx\.AsyncBaseTransport\b", "httpx.BaseTransport"),
    (r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    (r"\bAsyncClient\b", "Client"),
    (r"\bAsyncHTTP\b", "HTTP"),
    (r"\bAsyncPager\b", "Pager"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bStopAsyncIteration\b", "StopIteration"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\b__aiter__\b", "__iter__"),
    (r"\b__anext__\b", "__next__"),
    (r"\baclose\b", "close"),
    (r"\basynccontextmanager\b", "contextmanager"),
    (r"\baiter_(lines|bytes|raw|text)\b", r"iter_\1"),
    (r"\bAsyncIterable\b", "Iterable"),
    (r"\banext\(", "next("),
    (r"\baread\b", "read"),
    (r"\basync def\b", "def"),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"^import asyncio$", "import time"),
    (r"\bengramdb\.sdk\._async\b", "engramdb.sdk._sync"),
]


def unasync(text: str) -> str:
    for pattern, replacement in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    return text


def _ruff(args: list[str], text: str, name: Path) -> str:
    """Let ruff settle what the renames disturb (import order, `yield from`), as it would by hand."""
    cmd = [sys.executable, "-m", "ruff", *args, "--stdin-filename", str(name), "-"]
    return subprocess.run(cmd, input=text, capture_output=True, text=True, check=True, cwd=ROOT).stdout


def generated() -> dict[Path, str]:
    out: dict[Path, str] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        body = unasync(path.read_text())
        target = TARGET / path.relative_to(SOURCE)
        if body.strip():
            # Ruff calls a module first-party only once its file exists: say so, or a new module's first
            # generation sorts its own package's imports as third-party.
            first_party = ["--config", "lint.isort.known-first-party = ['engramdb']"]
            fixes = ["check", "--fix", "--unsafe-fixes", "--select", "I,UP028", "--quiet", *first_party]
            body = _ruff(fixes, HEADER + body, target)
            body = _ruff(["format", "--quiet"], body, target)
        out[target] = body
    return out


def main(argv: list[str]) -> int:
    files = generated()
    # Every module under _sync is generated, so one without an async source is left over from a rename.
    extra = sorted(p for p in TARGET.rglob("*.py") if p not in files)
    if "--check" in argv:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
        if stale or extra:
            print("out of date (run scripts/unasync.py):", *(p.relative_to(ROOT) for p in stale + extra), sep="\n  ")
            return 1
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for path in extra:
        path.unlink()
        print("removed", path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

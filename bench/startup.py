"""Start-up to healthy: `engramdb serve` on the embedded PostgreSQL until `GET /v1/health` answers 200.

Each run starts the server on ``--data-dir`` (a new folder: `initdb`, migrations, first start; an existing
one: the start a user sees every day), waits for the health route, then stops the server (SIGTERM, as a
service manager does) and waits for it (at most 120 s, then kills it), the embedded PostgreSQL included.
It prints, for each run, the seconds from the process's start to the first 200 and from SIGTERM to its
exit, and the median of the first.

    .venv/bin/python bench/startup.py                       # a new data directory, then 4 starts on it
    .venv/bin/python bench/startup.py --data-dir DIR --runs 1
    .venv/bin/python bench/startup.py --data-dir DIR --database-only   # the database alone

Run it with two virtual environments (each its own data directory: a PostgreSQL 18 server cannot open a
16 one) to compare servers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _server import _free_port  # noqa: E402


def start_to_healthy(data_dir: Path) -> tuple[float, float]:
    """Seconds from `engramdb serve`'s start to the first 200 of the health route, and from SIGTERM to its
    exit (killed after 120 s)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env.update({"ENGRAM_DATA_DIR": str(data_dir), "ENGRAM_PORT": str(port), "ENGRAM_LOG_LEVEL": "warning"})
    base = f"http://127.0.0.1:{port}"
    with (data_dir.parent / f"{data_dir.name}.serve.log").open("a") as log:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "engramdb", "serve"], env=env, stdout=log, stderr=log)
        try:
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"engramdb serve exited; see {log.name}")
                try:
                    if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                        healthy = time.perf_counter() - started
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        finally:
            stopping = time.perf_counter()
            proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return healthy, time.perf_counter() - stopping


def database_only(data_dir: Path) -> float:
    """Seconds from here to the embedded PostgreSQL answering a query (started, or joined if it runs); the
    server stops when this process exits, as with ``engramdb serve``."""
    import psycopg

    from engramdb.storage.embedded import start_embedded

    started = time.perf_counter()
    with psycopg.connect(start_embedded(data_dir, "engram")) as conn:
        conn.execute("SELECT 1")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="default: a new temporary folder")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--database-only", action="store_true", help="one start of the embedded PostgreSQL alone, to a first query"
    )
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="engram-startup-")) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = not (data_dir / "pgdata").exists()
    if args.database_only:
        kind = "new data directory" if fresh else "existing data directory"
        print(f"embedded PostgreSQL answered after {database_only(data_dir):.2f} s ({kind})")
        return
    times = []
    for run in range(args.runs):
        seconds, stop = start_to_healthy(data_dir)
        times.append(seconds)
        kind = "new data directory" if fresh and run == 0 else "existing data directory"
        print(f"run {run + 1}: healthy after {seconds:.2f} s ({kind}); stopped {stop:.2f} s after SIGTERM", flush=True)
    existing = times[1:] if fresh else times
    if existing:
        print(f"existing data directory: median {statistics.median(existing):.2f} s over {len(existing)} runs")


if __name__ == "__main__":
    main()

"""Shared by the benchmarks: run `engramdb serve` on a throw-away data dir (or use --url), make an org."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def engram_server(
    url: str | None, api_key: str | None, env_extra: dict[str, str] | None = None
) -> Iterator[tuple[str, str]]:
    """(base URL, API key): the given server, or a fresh embedded one started for this run."""
    if url:
        if not api_key:
            raise SystemExit("--url needs --api-key")
        yield url.rstrip("/"), api_key
        return
    data_dir = Path(tempfile.mkdtemp(prefix="engram-bench-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
    env.update({"ENGRAM_DATA_DIR": str(data_dir), "ENGRAM_PORT": str(port), "ENGRAM_LOG_LEVEL": "warning"})
    env.update(env_extra or {})
    log = (data_dir / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "engramdb", "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            if proc.poll() is not None:
                raise SystemExit(f"engramdb serve exited; see {data_dir / 'serve.log'}")
            try:
                if httpx.get(f"{base}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        out = subprocess.run(
            [sys.executable, "-m", "engramdb", "init", "--org", "bench", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        yield base, json.loads(out)["api_key"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]

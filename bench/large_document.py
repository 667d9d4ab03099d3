"""Large documents: what a client waits for, how fast the background job ingests, and how fast a stop is.

Starts `engramdb serve` on a throw-away data dir, then

1. posts a Markdown document of ``--mb`` megabytes (seeded text with headings and paragraphs) and times
   the answer (202 with the job), then follows the job to the end, printing its progress, and reports the
   ingest's wall time, chunks and chunks per second;
2. posts a second one of the same size, waits until its job is embedding, sends SIGTERM to the server and
   times its exit; then starts the server again on the same data and times how long the interrupted
   ingest takes to finish there (it starts over from its bytes).

    .venv/bin/python bench/large_document.py            # 4 MB
    .venv/bin/python bench/large_document.py --mb 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _server import _free_port  # noqa: E402

WORDS = (
    "the of memory agent postgres vector search retrieval session message fact graph entity document chunk "
    "tenant organization retention policy user team key audit worker queue"
).split()


def document(megabytes: float, seed: int) -> str:
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    section = 0
    while size < megabytes * 1_000_000:
        if len(parts) % 8 == 0:
            section += 1
            parts.append(f"## Section {section}")
        sentences = (" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 18))) for _ in range(rng.randint(3, 7)))
        parts.append(". ".join(sentences) + ".")
        size += len(parts[-1]) + 2
    return "# A large manual\n\n" + "\n\n".join(parts) + "\n"


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
        self.env.update(
            {"ENGRAM_DATA_DIR": str(data_dir), "ENGRAM_PORT": str(self.port), "ENGRAM_LOG_LEVEL": "warning"}
        )
        self.log = (data_dir / "serve.log").open("a")
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engramdb", "serve"], env=self.env, stdout=self.log, stderr=self.log
        )
        for _ in range(1200):
            if self.proc.poll() is not None:
                raise SystemExit(f"engramdb serve exited; see {data_dir / 'serve.log'}")
            try:
                if httpx.get(f"{self.base}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)

    def stop(self) -> float:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=600)
        return time.monotonic() - started


def follow(client: httpx.Client, job_id: str, *, until_embedding: bool = False) -> dict[str, Any]:
    shown = -1
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        result = job["result"]
        if until_embedding and result.get("stage") == "embedding":
            return job
        if job["status"] in ("succeeded", "failed"):
            return job
        done = result.get("chunks_embedded", 0)
        if done != shown and result.get("chunks_to_embed"):
            print(f"  {job['status']:9} {done:6} / {result['chunks_to_embed']} chunks embedded", flush=True)
            shown = done
        time.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=4.0, help="megabytes of each document (default 4)")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="engram-bench-large-"))
    server = Server(data_dir)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "engramdb", "init", "--org", "bench", "--json"],
            env=server.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        key = json.loads(out)["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=120) as client:
            text = document(args.mb, seed=1)
            started = time.monotonic()
            r = client.post("/v1/documents", json={"content": text, "path": "manual.md"})
            answered = time.monotonic() - started
            assert r.status_code == 202, r.text
            print(f"1. {len(text) / 1e6:.1f} MB posted: {r.status_code} in {answered * 1000:.0f} ms")
            job = follow(client, r.json()["job"]["id"])
            took = time.monotonic() - started
            chunks = job["result"]["chunks"]["added"]
            print(f"   {job['status']}: {chunks} chunks in {took:.1f} s ({chunks / took:.1f} chunks/s)")

            r = client.post("/v1/documents", json={"content": document(args.mb, seed=2), "path": "second.md"})
            second = r.json()["job"]["id"]
            follow(client, second, until_embedding=True)
        stopped_in = server.stop()
        print(f"2. SIGTERM while the second ingest was embedding: the server exited in {stopped_in:.1f} s")
        server = Server(data_dir)
        with httpx.Client(base_url=server.base, headers=headers, timeout=120) as client:
            started = time.monotonic()
            job = follow(client, second)
            print(
                f"   after a restart: {job['status']} in {time.monotonic() - started:.1f} s, attempts {job['attempts']}"
            )
    finally:
        if server.proc.poll() is None:
            server.stop()


if __name__ == "__main__":
    main()

"""MCP over stdio as a desktop client sees it: how long `engramdb mcp` takes to answer its first
request, and how long a tool call takes once it runs.

A fresh data directory (its embedded PostgreSQL is created by `engramdb init`), then `--runs` times: the
MCP SDK's own client starts `engramdb mcp`, lists the tools (the start-up time: process, PostgreSQL,
migrations check, embedding model), then calls `add_memory` and `search` `--calls` times each.

    .venv/bin/python bench/mcp_stdio.py [--runs 3] [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client


def _engramdb(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "engramdb", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return done.stdout


async def _run(env: dict[str, str], calls: int) -> tuple[float, list[float], list[float]]:
    started = time.perf_counter()
    params = StdioServerParameters(command=sys.executable, args=["-m", "engramdb", "mcp"], env=env)
    adds: list[float] = []
    searches: list[float] = []
    async with Client(stdio_client(params)) as client:
        await client.list_tools()
        first = time.perf_counter() - started
        for i in range(calls):
            t = time.perf_counter()
            result = await client.call_tool(
                "add_memory", {"content": f"Ivo's fact number {i}", "external_user_id": "ivo"}
            )
            adds.append(time.perf_counter() - t)
            assert not result.is_error
            t = time.perf_counter()
            result = await client.call_tool("search", {"query": f"fact {i} about Ivo", "external_user_id": "ivo"})
            searches.append(time.perf_counter() - t)
            assert not result.is_error
    return first, adds, searches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="engram-mcp-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENGRAM_")}
        env.update({"ENGRAM_DATA_DIR": str(Path(tmp) / "data"), "ENGRAM_LOG_LEVEL": "warning"})
        env["ENGRAM_API_KEY"] = json.loads(_engramdb(env, "init", "--org", "bench", "--json"))["api_key"]
        firsts, adds, searches = [], [], []
        for _ in range(args.runs):
            first, a, s = asyncio.run(_run(env, args.calls))
            firsts.append(first)
            adds += a
            searches += s
        pgdata = Path(tmp) / "data" / "pgdata" / "postmaster.pid"
        if pgdata.exists():  # the last `engramdb mcp` died with its client: stop its PostgreSQL
            os.kill(int(pgdata.read_text().split()[0]), 3)

    def ms(values: list[float]) -> str:
        ordered = sorted(values)
        p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
        return f"median {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"

    print(f"first answer of `engramdb mcp` (start-up), {args.runs} runs: median {statistics.median(firsts):.2f} s")
    print(f"add_memory, {len(adds)} calls: {ms(adds)}")
    print(f"search, {len(searches)} calls: {ms(searches)}")


if __name__ == "__main__":
    main()

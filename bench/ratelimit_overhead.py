"""Rate-limit overhead: what counting one request costs (``services.tenancy.quotas.hit``, one statement),
next to a bare ``SELECT 1`` round trip on the same pool, on a fresh embedded PostgreSQL.

    .venv/bin/python bench/ratelimit_overhead.py              # 2,000 sequential, then 32 concurrent
    .venv/bin/python bench/ratelimit_overhead.py -n 5000 -c 64

Three cases: no limits (the request is only tallied for usage), a key and an organization limit (both
counters move), and the concurrent case, where every request of one organization updates the same
organization row (the hot row a per-org limit implies). Results are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import percentile  # noqa: E402
from engramdb.config import Settings  # noqa: E402
from engramdb.services.tenancy import keys, quotas  # noqa: E402
from engramdb.storage.database import Database  # noqa: E402
from engramdb.storage.embedded import start_embedded  # noqa: E402
from engramdb.storage.migrate import migrate  # noqa: E402


async def _timed(count: int, step: Callable[[], Awaitable[object]]) -> list[float]:
    took = []
    for _ in range(count):
        started = time.perf_counter()
        await step()
        took.append((time.perf_counter() - started) * 1000)
    return took


def _line(name: str, ms: list[float]) -> str:
    return (
        f"{name:<38} mean {statistics.fmean(ms):6.3f} ms  p50 {percentile(ms, 50):6.3f}  "
        f"p95 {percentile(ms, 95):6.3f}  p99 {percentile(ms, 99):6.3f}"
    )


async def run(count: int, concurrency: int) -> None:
    url = start_embedded(Path(tempfile.mkdtemp(prefix="engram-bench-rl-")), "bench")
    migrate(url)
    off = Settings(database_url=url)
    on = off.model_copy(update={"rate_limit_writes": 10**9, "org_rate_limit_writes": 10**9})
    db = Database.connect(off)
    try:
        _, key = await keys.create_organization(db, name="bench")
        caller = await keys.authenticate(db, key.api_key)

        async def ping() -> None:
            async with db.autocommit() as conn:
                await conn.execute(text("SELECT 1"))

        for step in (ping, lambda: quotas.hit(db, caller, "writes", off)):  # warm the pool and the plans
            await _timed(50, step)
        print(f"{count} sequential calls, one connection at a time:")
        print(_line("SELECT 1 (a round trip)", await _timed(count, ping)))
        print(_line("hit, no limits (tally only)", await _timed(count, lambda: quotas.hit(db, caller, "writes", off))))
        print(_line("hit, key + org limits", await _timed(count, lambda: quotas.hit(db, caller, "writes", on))))

        per_task = max(1, count // concurrency)
        for name, settings in (("no limits", off), ("key + org limits", on)):
            started = time.perf_counter()
            took = await asyncio.gather(
                *(_timed(per_task, lambda s=settings: quotas.hit(db, caller, "writes", s)) for _ in range(concurrency))
            )
            wall = time.perf_counter() - started
            flat = [ms for task in took for ms in task]
            print(
                _line(f"{concurrency} concurrent, {name}", flat) + f"  ({len(flat) / wall:,.0f} hits/s on one org, "
                f"pool of {off.db_pool_size}+{off.db_max_overflow})"
            )
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="calls per case")
    parser.add_argument("-c", type=int, default=32, help="concurrent tasks in the last cases")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.c))


if __name__ == "__main__":
    main()

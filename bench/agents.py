"""Agents at work, through the HTTP API of a real `engramdb serve` (embedded Postgres, one process):

* claims: ``--tasks`` tasks on one queue, claimed and completed by ``--claimers`` concurrent workers (one
  agent and one SDK client each); tasks/s, and counted: no task claimed twice, none lost;
* messages: ``--messages`` direct messages sent one after another to an agent whose inbox is open as a
  Server-Sent Events stream; sent → received latency p50/p95 (the send call's start to the event's arrival);
* heartbeats: ``--beats`` heartbeats from ``--claimers`` concurrent agents; beats/s.

    .venv/bin/python bench/agents.py                          # 10,000 tasks, 8 claimers, 1,000 messages
    .venv/bin/python bench/agents.py --tasks 2000 --messages 300
    .venv/bin/python bench/agents.py --url http://host:8420 --api-key egm_…
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import engram_server, percentile  # noqa: E402
from engramdb.sdk import AsyncClient  # noqa: E402


async def _create(client: AsyncClient, count: int, queue: str) -> list[str]:
    made: list[str] = []
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            made.append(str((await client.tasks.create(title=f"task {i}", queue=queue, priority=i % 5)).id))

    await asyncio.gather(*(one(i) for i in range(count)))
    return made


async def claims(base: str, key: str, tasks: int, claimers: int) -> None:
    queue = f"bench-{time.time_ns()}"
    async with AsyncClient(base, key, timeout=120) as admin:
        started = time.perf_counter()
        created = await _create(admin, tasks, queue)
        print(f"created {len(created)} tasks in {time.perf_counter() - started:.1f} s")
        agents = [await admin.agents.create(name=f"{queue}-w{i}") for i in range(claimers)]
        claimed: list[str] = []

        async def worker(agent_id: str) -> None:
            async with AsyncClient(base, key, timeout=120) as client:
                while True:
                    task = await client.tasks.claim(agent_id=agent_id, queue=queue, lease_s=300)
                    if task is None:
                        return
                    claimed.append(str(task.id))
                    await client.tasks.complete(task.id, lease_id=task.lease_id, result={"by": agent_id})

        started = time.perf_counter()
        await asyncio.gather(*(worker(str(a.id)) for a in agents))
        elapsed = time.perf_counter() - started
        twice = [t for t, n in Counter(claimed).items() if n > 1]
        lost = set(created) - set(claimed)
        done = [t async for t in admin.tasks.list(queue=queue, state="completed", limit=200)]
        print(
            f"claims: {len(claimed)} claimed and completed by {claimers} claimers in {elapsed:.1f} s = "
            f"{len(claimed) / elapsed:.0f} tasks/s (claim + complete); claimed twice: {len(twice)}; "
            f"lost: {len(lost)}; completed in the database: {len(done)} of {len(created)}"
        )


async def messages(base: str, key: str, count: int) -> None:
    async with AsyncClient(base, key, timeout=120) as client:
        stamp = time.time_ns()
        sender = await client.agents.create(name=f"sender-{stamp}")
        receiver = await client.agents.create(name=f"receiver-{stamp}")
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        done = asyncio.Event()
        opened = asyncio.Event()

        async def follow() -> None:
            async with AsyncClient(base, key, timeout=120) as reader:
                opened.set()
                async for event in reader.inbox.stream(receiver.id):
                    latencies.append(time.perf_counter() - sent_at[event.data["payload"]["k"]])
                    if len(latencies) == count:
                        done.set()
                        return

        task = asyncio.create_task(follow())
        await opened.wait()
        await asyncio.sleep(0.5)  # the stream is open
        for i in range(count):
            k = f"m{i}"
            sent_at[k] = time.perf_counter()
            await client.inbox.send(from_agent_id=sender.id, to_agent_id=receiver.id, payload={"k": k})
        await asyncio.wait_for(done.wait(), timeout=120)
        await task
        ms = [1000 * v for v in latencies]
        print(
            f"messages: {len(ms)} sent → received on an open stream: p50 {percentile(ms, 50):.1f} ms, "
            f"p95 {percentile(ms, 95):.1f} ms, max {max(ms):.1f} ms"
        )


async def heartbeats(base: str, key: str, beats: int, agents: int) -> None:
    async with AsyncClient(base, key, timeout=120) as admin:
        stamp = time.time_ns()
        made = [await admin.agents.create(name=f"beater-{stamp}-{i}") for i in range(agents)]

        async def beat(agent_id: str, n: int) -> None:
            async with AsyncClient(base, key, timeout=120) as client:
                for _ in range(n):
                    await client.agents.heartbeat(agent_id, status="active", metrics={"load": 0.5})

        started = time.perf_counter()
        await asyncio.gather(*(beat(str(a.id), beats // agents) for a in made))
        elapsed = time.perf_counter() - started
        print(f"heartbeats: {beats} from {agents} agents in {elapsed:.1f} s = {beats / elapsed:.0f} beats/s")


async def run(args: argparse.Namespace) -> None:
    with engram_server(args.url, args.api_key) as (base, key):
        await claims(base, key, args.tasks, args.claimers)
        await messages(base, key, args.messages)
        await heartbeats(base, key, args.beats, args.claimers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--claimers", type=int, default=8)
    parser.add_argument("--messages", type=int, default=1_000)
    parser.add_argument("--beats", type=int, default=4_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--api-key", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

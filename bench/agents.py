"""Agents at work, through the HTTP API of a real `engramdb serve` (one process, embedded Postgres):

* claims: ``--tasks`` tasks on one queue, claimed and completed by ``--claimers`` concurrent claimers (each
  its own agent and SDK client, in one process of their own); tasks/s, and counted over every task from
  the database: none claimed again while a lease held it, none completed twice, none lost;
* the same with one claimer in a process of its own, killed (``SIGKILL``) a third of the way in while it
  holds a lease (``--kill-tasks``): its task comes back when the lease (``--lease-s``) runs out and another
  claimer completes it;
* messages: ``--messages`` direct messages sent one after another to an agent whose inbox is open as a
  Server-Sent Events stream, while ``--idle`` other agents hold idle streams open on the same server
  process; sent → received latency p50/p95, and the server's database connections with and without them;
* heartbeats: ``--beats`` from ``--claimers`` concurrent agents, beats/s; and ``--searches`` searches
  alone, then beside heartbeats, p50/p95.

Started here, the server gets its own embedded database, which the bench also reads (for the counts and
connections) and seeds: the claim runs' tasks are written straight into it, since creating 10,000 through
the API would take longer than claiming them (``--creates`` tasks are created through the API to time
that). With ``--url`` everything goes through the API and the database checks are left out.

    .venv/bin/python bench/agents.py                       # 10,000 tasks, 8 claimers, 1,000 messages, 500 idle
    .venv/bin/python bench/agents.py --tasks 2000 --kill-tasks 1000 --messages 300 --idle 100
    .venv/bin/python bench/agents.py --url http://host:8420 --api-key egm_…
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import engram_server, percentile  # noqa: E402
from engramdb import ids  # noqa: E402
from engramdb.sdk import AsyncClient  # noqa: E402
from engramdb.storage.embedded import start_embedded  # noqa: E402
from engramdb.storage.migrate import migrate  # noqa: E402

VICTIM_WORK_MS = 1000  # the killed claimer's time on each task (the others complete at once)

# --- a claimer process ----------------------------------------------------------------------------------


async def claimer(args: argparse.Namespace) -> None:
    """One claimer per agent named (each its own SDK client), claiming and completing until the queue is
    empty and nothing is leased; each step logged, line-buffered (a killed process's log ends where it
    died)."""
    log = Path(args.log).open("a", buffering=1)
    await asyncio.sleep(max(0.0, args.start_at - time.time()))

    async def one(agent_id: str) -> None:
        async with AsyncClient(args.url, args.api_key, timeout=120) as client:
            while True:
                task = await client.tasks.claim(agent_id=agent_id, queue=args.queue, lease_s=args.lease_s)
                if task is None:
                    if not await _left(client, args.queue):
                        return
                    await asyncio.sleep(0.2)  # a lease still held somewhere: its task may come back
                    continue
                log.write(f"C {task.id}\n")
                await asyncio.sleep(args.work_ms / 1000)  # the work
                await client.tasks.complete(task.id, lease_id=task.lease_id, result={"by": agent_id})
                log.write(f"D {task.id}\n")

    await asyncio.gather(*(one(a) for a in args.claimer.split(",")))
    log.write(f"END {time.time():.3f}\n")
    log.close()


async def _left(client: AsyncClient, queue: str) -> bool:
    for state in ("submitted", "working"):
        if (await client.tasks.list(queue=queue, state=state, limit=1).page()).data:
            return True
    return False


# --- claims --------------------------------------------------------------------------------------------


def _seed(db_url: str, queue: str, count: int) -> None:
    """``count`` submitted tasks on ``queue`` of the bench organization, each with its ``created`` event."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT org_id FROM organization WHERE name = 'bench'").fetchone()
        assert row is not None
        conn.execute(
            """WITH made AS (
                 INSERT INTO task (org_id, id, queue, title, priority)
                 SELECT %(org)s, id, %(queue)s, 'task ' || n, n %% 5
                 FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS x(id, n)
                 RETURNING id)
               INSERT INTO task_event (org_id, task_id, queue, kind, to_state, actor, details)
               SELECT %(org)s, id, %(queue)s, 'created', 'submitted', 'bench', '{}' FROM made ORDER BY id""",
            {"org": row[0], "queue": queue, "ids": [ids.uuid7() for _ in range(count)]},
        )


async def _create(client: AsyncClient, count: int, queue: str) -> list[str]:
    made: list[str] = []
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            made.append(str((await client.tasks.create(title=f"task {i}", queue=queue, priority=i % 5)).id))

    await asyncio.gather(*(one(i) for i in range(count)))
    return made


def _read(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def _last_step(path: Path) -> list[str]:
    if not path.exists():
        return []
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 100))
        lines = f.read().decode(errors="replace").splitlines()
    return lines[-1].split() if lines else []


async def _kill(victim: subprocess.Popen[bytes], logs: list[Path], tasks: int) -> str | None:
    """Once a third of the tasks are done, SIGKILL the victim while its last word is a claim (it holds a
    lease and is working on it); the task it held."""
    while sum(1 for log in logs for step in _read(log) if step[0] == "D") < tasks // 3:
        await asyncio.sleep(0.5)
    while victim.poll() is None:
        step = _last_step(logs[-1])
        if step and step[0] == "C":
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            return step[1]
        await asyncio.sleep(0.002)
    return None


def _counts(db_url: str, queue: str) -> dict[str, int]:
    """Over every task of the queue, from the tasks and their histories."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """WITH h AS (
                 SELECT task_id, count(*) FILTER (WHERE kind = 'claimed') AS claims,
                        count(*) FILTER (WHERE kind = 'completed') AS completions,
                        count(*) FILTER (WHERE kind = 'lease_expired') AS expiries
                 FROM task_event WHERE queue = %(q)s GROUP BY task_id)
               SELECT (SELECT count(*) FROM task WHERE queue = %(q)s),
                      (SELECT count(*) FROM task WHERE queue = %(q)s AND state = 'completed'),
                      count(*) FILTER (WHERE claims > 1),
                      count(*) FILTER (WHERE claims - 1 > expiries),
                      count(*) FILTER (WHERE completions > 1)
               FROM h""",
            {"q": queue},
        ).fetchone()
    assert row is not None
    keys = ("tasks", "completed", "claimed_again", "claimed_under_a_live_lease", "completed_twice")
    return dict(zip(keys, (int(v) for v in row), strict=True))


async def claims(
    base: str, key: str, db_url: str | None, tasks: int, claimers: int, *, lease_s: int, kill: bool
) -> None:
    """All claimers in one process; with ``kill``, the last one in a process of its own, killed."""
    queue = f"bench-{time.time_ns()}"
    async with AsyncClient(base, key, timeout=120) as admin:
        if db_url is not None:
            _seed(db_url, queue, tasks)
        else:
            await _create(admin, tasks, queue)
        agents = [str((await admin.agents.create(name=f"{queue}-w{i}")).id) for i in range(claimers)]
        groups = [agents[:-1], agents[-1:]] if kill else [agents]
        logs = [Path(tempfile.mkdtemp(prefix="engram-claimer-")) / "log" for _ in groups]
        start_at = time.time() + 3  # every claimer process imported and ready by then
        works = [0, VICTIM_WORK_MS] if kill else [0]  # the victim works a while on each task: killed at it
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--claimer", ",".join(group), "--url", base, "--api-key", key]
                + ["--queue", queue, "--lease-s", str(lease_s), "--start-at", str(start_at), "--log", str(log)]
                + ["--work-ms", str(work_ms)]
            )
            for group, log, work_ms in zip(groups, logs, works, strict=True)
        ]
        try:
            held = await _kill(procs[-1], logs, tasks) if kill else None
            for proc in procs:
                await asyncio.to_thread(proc.wait)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        steps = [step for log in logs for step in _read(log)]
        elapsed = max(float(s[1]) for s in steps if s[0] == "END") - start_at
        claimed = Counter(s[1] for s in steps if s[0] == "C")
        done = Counter(s[1] for s in steps if s[0] == "D")
        label = f"kill -9 of one claimer (lease {lease_s} s)" if kill else "claims"
        print(
            f"{label}: {tasks} tasks, {claimers} claimers, {elapsed:.1f} s = {tasks / elapsed:.0f} tasks/s "
            f"(claim + complete); claims logged {sum(claimed.values())}, completions logged {sum(done.values())}"
        )
        if held is not None:
            kinds = [e.kind for e in await admin.tasks.history(held).to_list()]
            print(f"  the killed claimer held task {held}: its history {kinds}")
        if db_url is not None:
            print(f"  counted over every task in the database: {_counts(db_url, queue)}")


# --- messages and idle subscribers -----------------------------------------------------------------------


def _connections(db_url: str | None) -> int | None:
    if db_url is None:
        return None
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else None


async def _hold_idle(stack: AsyncExitStack, base: str, key: str, agent_ids: list[str]) -> None:
    """Open one inbox stream per agent and keep it open (until ``stack`` closes)."""
    limits = httpx.Limits(max_connections=len(agent_ids) + 10, max_keepalive_connections=0)
    http = await stack.enter_async_context(
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=None, limits=limits)
    )
    sem = asyncio.Semaphore(8)

    async def one(agent_id: str) -> None:
        async with sem:
            for attempt in range(10):  # a server short of connections sheds the open (503): come back
                response = await stack.enter_async_context(http.stream("GET", f"/v1/agents/{agent_id}/inbox/stream"))
                if response.status_code != 503:
                    break
                await response.aclose()
                await asyncio.sleep(0.2 * (attempt + 1))
            response.raise_for_status()

    await asyncio.gather(*(one(a) for a in agent_ids))


async def messages(base: str, key: str, db_url: str | None, count: int, idle: int) -> None:
    async with AsyncClient(base, key, timeout=120) as client, AsyncExitStack() as stack:
        stamp = time.time_ns()
        sender = await client.agents.create(name=f"sender-{stamp}")
        receiver = await client.agents.create(name=f"receiver-{stamp}")
        before = _connections(db_url)
        if idle:
            sem = asyncio.Semaphore(16)

            async def made(i: int) -> str:
                async with sem:
                    return str((await client.agents.create(name=f"idle-{stamp}-{i}")).id)

            idlers = await asyncio.gather(*(made(i) for i in range(idle)))
            started = time.perf_counter()
            await _hold_idle(stack, base, key, idlers)
            print(f"{idle} idle inbox streams opened in {time.perf_counter() - started:.1f} s")
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
        during = _connections(db_url)
        for i in range(count):
            k = f"m{i}"
            sent_at[k] = time.perf_counter()
            await client.inbox.send(from_agent_id=sender.id, to_agent_id=receiver.id, payload={"k": k})
        await asyncio.wait_for(done.wait(), timeout=300)
        await task
        ms = [1000 * v for v in latencies]
        print(
            f"messages: {len(ms)} sent → received on an open stream, {idle} idle streams beside it: "
            f"p50 {percentile(ms, 50):.1f} ms, p95 {percentile(ms, 95):.1f} ms, max {max(ms):.1f} ms"
        )
        if before is not None:
            print(f"  the server's database connections: {before} before the streams, {during} with {idle + 1} open")


# --- heartbeats, and search beside them ------------------------------------------------------------------


async def _searches(client: AsyncClient, count: int) -> list[float]:
    took = []
    for i in range(count):
        started = time.perf_counter()
        await client.search(query=f"what does the team know about topic {i % 7}", top_k=10)
        took.append(1000 * (time.perf_counter() - started))
    return took


async def heartbeats(base: str, key: str, beats: int, agents: int, searches: int) -> None:
    async with AsyncClient(base, key, timeout=120) as admin:
        stamp = time.time_ns()
        made = [await admin.agents.create(name=f"beater-{stamp}-{i}") for i in range(agents)]
        stop = asyncio.Event()

        async def beat(agent_id: str, n: int | None) -> int:
            sent = 0
            async with AsyncClient(base, key, timeout=120) as client:
                while (n is None and not stop.is_set()) or (n is not None and sent < n):
                    await client.agents.heartbeat(agent_id, status="active", metrics={"load": 0.5})
                    sent += 1
            return sent

        started = time.perf_counter()
        await asyncio.gather(*(beat(str(a.id), beats // agents) for a in made))
        elapsed = time.perf_counter() - started
        print(f"heartbeats: {beats} from {agents} agents in {elapsed:.1f} s = {beats / elapsed:.0f} beats/s")
        if not searches:
            return
        for i in range(200):
            await admin.memories.create(content=f"Topic {i % 7}: note {i} on what the team decided")
        alone = await _searches(admin, searches)
        beating = [asyncio.create_task(beat(str(a.id), None)) for a in made]
        started = time.perf_counter()
        beside = await _searches(admin, searches)
        stop.set()
        sent = sum(await asyncio.gather(*beating))
        rate = sent / (time.perf_counter() - started)
        print(
            f"search ({searches} each, 200 memories): alone p50 {percentile(alone, 50):.0f} ms, "
            f"p95 {percentile(alone, 95):.0f} ms; beside {rate:.0f} beats/s: p50 {percentile(beside, 50):.0f} ms, "
            f"p95 {percentile(beside, 95):.0f} ms"
        )


# --- the run -------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, db_url: str | None) -> None:
    extra = {"ENGRAM_DATABASE_URL": db_url} if db_url is not None else {}
    extra["ENGRAM_WORKERS"] = str(args.server_processes)
    with engram_server(args.url, args.api_key, extra) as (base, key):
        if args.creates:
            async with AsyncClient(base, key, timeout=120) as admin:
                started = time.perf_counter()
                await _create(admin, args.creates, f"created-{uuid.uuid4().hex[:8]}")
                elapsed = time.perf_counter() - started
                print(
                    f"creates: {args.creates} tasks through the API in {elapsed:.1f} s = {args.creates / elapsed:.0f}/s"
                )
        if args.tasks:
            await claims(base, key, db_url, args.tasks, args.claimers, lease_s=args.lease_s, kill=False)
        if args.kill_tasks:
            await claims(base, key, db_url, args.kill_tasks, args.claimers, lease_s=args.lease_s, kill=True)
        if args.messages:
            await messages(base, key, db_url, args.messages, args.idle)
        if args.beats:
            await heartbeats(base, key, args.beats, args.claimers, args.searches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="the claims run (0: skip it)")
    parser.add_argument("--kill-tasks", type=int, default=10_000, help="the run with a claimer killed (0: skip)")
    parser.add_argument("--claimers", type=int, default=8)
    parser.add_argument(
        "--lease-s", type=int, default=15, help="the claims' lease: a killed claimer's task waits it out"
    )
    parser.add_argument("--creates", type=int, default=300, help="tasks created through the API, to time creation")
    parser.add_argument("--messages", type=int, default=1_000)
    parser.add_argument("--idle", type=int, default=500, help="idle inbox streams held open during the messages")
    parser.add_argument("--beats", type=int, default=4_000)
    parser.add_argument("--searches", type=int, default=50)
    parser.add_argument("--server-processes", type=int, default=1, help="API processes of the server started here")
    parser.add_argument("--url", default=None)
    parser.add_argument("--api-key", default=None)
    # One claimer process (started by the claims run).
    parser.add_argument("--claimer", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--queue", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--log", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work-ms", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.claimer is not None:
        asyncio.run(claimer(args))
        return
    db_url = None
    if args.url is None:  # a database of our own, so that the bench can seed and count in it
        db_url = start_embedded(Path(tempfile.mkdtemp(prefix="engram-agents-")), "engram")
        migrate(db_url)
    asyncio.run(run(args, db_url))


if __name__ == "__main__":
    main()

"""Dashboard page times and page weight at LoCoMo size, through a real server.

Loads LoCoMo (see bench/locomo.py for where it comes from) through the public API: each conversation a user,
each session a session with its turns as messages (5,882), each LoCoMo observation a memory whose
provenance is the turn it cites, each session summary an episodic memory, and a fact per speaker and
session. Then it signs in to the dashboard as a browser would and asks each page ``--rounds`` times,
reporting the server's time per page (p50/p95 of the answer's wall time on loopback, where the network
adds well under a millisecond) and the weight of each page: its HTML plus the CSS and JS it loads.

    .venv/bin/python bench/dashboard.py                      # full LoCoMo on a fresh embedded server
    .venv/bin/python bench/dashboard.py --conversations 2    # a subset
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from _server import engram_server, percentile  # noqa: E402
from locomo import locomo_path, message_batch, sessions_of  # noqa: E402

console = Console()
ASSETS = re.compile(r'<(?:script|link)[^>]+(?:src|href)="(/ui/static/[^"]+\.(?:css|js))"')


def load(client: httpx.Client, samples: list[dict[str, Any]], progress: Progress) -> dict[str, Any]:
    """Everything through the API; returns ids the pages are asked about and what was stored."""
    turns = sum(len(t) for s in samples for _, _, t in sessions_of(s["conversation"]))
    task = progress.add_task("load", total=turns)
    counts = {"messages": 0, "memories": 0, "facts": 0}
    ids: dict[str, Any] = {}
    for sample in samples:
        user = sample["sample_id"]
        by_dia: dict[str, str] = {}
        for key, when, session_turns in sessions_of(sample["conversation"]):
            session = client.post("/v1/sessions", json={"external_user_id": user, "title": key}).json()
            ids.setdefault("session", session["id"])
            ids.setdefault("user", session["user_id"])
            batch = message_batch(session_turns, when)
            added = client.post(f"/v1/sessions/{session['id']}/messages", json={"messages": batch, "extract": False})
            added.raise_for_status()
            for message, turn in zip(added.json()["data"], session_turns, strict=True):
                by_dia[turn["dia_id"]] = message["id"]
            counts["messages"] += len(batch)
            number = key.split("_")[1]
            summary = sample.get("session_summary", {}).get(f"{key}_summary")
            if summary:
                _memory(client, user, summary, "episodic", [], session["id"])
                counts["memories"] += 1
            for speaker, observed in sample.get("observation", {}).get(f"session_{number}_observation", {}).items():
                for text, dia in observed:
                    sources = [by_dia[d] for d in re.findall(r"D\d+:\d+", str(dia)) if d in by_dia]
                    memory = _memory(client, user, text, "fact", sources, session["id"])
                    ids.setdefault("memory", memory["id"])
                    counts["memories"] += 1
                fact = client.post(
                    "/v1/facts",
                    json={
                        "external_user_id": user,
                        "subject": speaker,
                        "subject_type": "person",
                        "predicate": "talked_about",
                        "object": f"{user} {key}",
                        "object_is_entity": True,
                        "valid_from": when.isoformat(),
                    },
                )
                fact.raise_for_status()
                ids.setdefault("entity", fact.json()["fact"]["subject_id"])
                counts["facts"] += 1
            progress.advance(task, len(session_turns))
    return {"ids": ids, "counts": counts}


def _memory(
    client: httpx.Client, user: str, text: str, kind: str, sources: list[str], session_id: str
) -> dict[str, Any]:
    body = {
        "external_user_id": user,
        "content": text[:4000],
        "type": kind,
        "source_message_ids": sources[:50],
        "session_id": session_id,
    }
    r = client.post("/v1/memories", json=body)
    r.raise_for_status()
    data: dict[str, Any] = r.json()
    return data


def sign_in(base: str, key: str) -> httpx.Client:
    web = httpx.Client(base_url=base, timeout=60)
    form = web.get("/ui/sign-in").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    done = web.post("/ui/sign-in", data={"api_key": key, "csrf": token.group(1)})
    assert done.status_code == 303, done.text
    return web


def pages(ids: dict[str, Any]) -> dict[str, str]:
    return {
        "overview": "/ui/",
        "users": "/ui/users",
        "user": f"/ui/users/{ids['user']}",
        "sessions": "/ui/sessions",
        "session": f"/ui/sessions/{ids['session']}",
        "memories": "/ui/memories",
        "memory": f"/ui/memories/{ids['memory']}",
        "facts": f"/ui/facts?user_id={ids['user']}",
        "entities": "/ui/entities",
        "graph": f"/ui/entities/{ids['entity']}?depth=2",
        "search": f"/ui/search?query=What+did+they+talk+about&user_id={ids['user']}&types=messages&types=memories",
        "context": f"/ui/context?user_id={ids['user']}&query=What+are+their+hobbies",
        "documents": "/ui/documents",
        "jobs": "/ui/jobs",
        "audit": "/ui/audit",
        "keys": "/ui/keys",
    }


def measure(web: httpx.Client, targets: dict[str, str], rounds: int) -> dict[str, dict[str, float]]:
    assets: dict[str, int] = {}
    out: dict[str, dict[str, float]] = {}
    for name, path in targets.items():
        times = []
        html = b""
        for _ in range(rounds):
            started = time.perf_counter()
            r = web.get(path)
            times.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
            html = r.content
        loaded = ASSETS.findall(html.decode())
        for asset in loaded:
            if asset not in assets:
                assets[asset] = len(web.get(asset).content)
        out[name] = {
            "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1),
            "html_bytes": len(html),
            "total_bytes": len(html) + sum(assets[a] for a in loaded),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="locomo10.json (default: $ENGRAM_LOCOMO, or ../shared/data/)")
    parser.add_argument("--url", help="a running Engram server (default: start one)")
    parser.add_argument("--api-key")
    parser.add_argument("--conversations", type=int, default=0, help="only the first N conversations")
    parser.add_argument("--rounds", type=int, default=20, help="requests per page")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    samples = json.loads(locomo_path(args.data).read_text())
    if args.conversations:
        samples = samples[: args.conversations]
    # No worker: extraction is off for these messages, and a worker's jobs would compete for the CPU.
    with (
        engram_server(args.url, args.api_key, {"ENGRAM_WORKER_IN_SERVE": "false"}) as (base, key),
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client,
    ):
        with Progress(console=console) as progress:
            started = time.perf_counter()
            loaded = load(client, samples, progress)
            load_s = time.perf_counter() - started
        web = sign_in(base, key)
        try:
            figures = measure(web, pages(loaded["ids"]), args.rounds)
        finally:
            web.close()
    table = Table(title=f"Dashboard pages at {loaded['counts']} ({args.rounds} requests each)")
    for column in ("page", "p50 ms", "p95 ms", "HTML bytes", "HTML+CSS+JS bytes"):
        table.add_column(column, justify="left" if column == "page" else "right")
    for name, f in figures.items():
        table.add_row(name, str(f["p50_ms"]), str(f["p95_ms"]), f"{f['html_bytes']:,}", f"{f['total_bytes']:,}")
    console.print(table)
    heaviest = max(figures, key=lambda n: figures[n]["total_bytes"])
    console.print(f"heaviest page: {heaviest}, {figures[heaviest]['total_bytes']:,} bytes; loaded in {load_s:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"counts": loaded["counts"], "load_s": load_s, "pages": figures}, indent=2))


if __name__ == "__main__":
    main()

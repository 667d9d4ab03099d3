"""What the browser tests look at, written through the public API of a running server (as a user of the
service would): a user with a conversation, memories, facts with history, an entity graph, a document,
two agents with tasks and a message between them, and the XSS payloads every page must show as text."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

# Stored content is attacker-controlled: each payload, if a page ever inserted it as HTML, would run a
# script that sets window.__xss (or opens a dialog).
XSS = [
    '<script>window.__xss = "script"</script>',
    "<img src=x onerror=\"window.__xss = 'onerror'; alert(1)\">",
    '"><svg onload="window.__xss = \'svg\'">',
]


@dataclass(frozen=True)
class Seeded:
    user_id: str
    session_id: str
    message_ids: list[str]
    memory_id: str
    xss_memory_id: str
    lisbon_entity_id: str
    xss_entity_id: str
    document_id: str
    closed_fact_id: str
    worker_agent_id: str
    planner_agent_id: str
    task_id: str  # assigned to the worker, overdue, not started: cancellable


def seed(base: str, key: str) -> Seeded:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:

        def post(path: str, body: dict[str, object]) -> dict[str, object]:
            r = c.post(path, json=body)
            assert r.status_code in (200, 201, 202), f"{path}: {r.status_code} {r.text}"
            data: dict[str, object] = r.json()
            return data

        session = post("/v1/sessions", {"external_user_id": "alice", "title": "Moving house"})
        turns = [
            ("user", "I moved to Lisbon last month, from Porto.", "2025-03-01T09:00:00Z"),
            ("assistant", "How do you like Lisbon?", "2025-03-01T09:00:05Z"),
            ("user", "Love it. My sister Maria lives in Porto still.", "2025-03-01T09:01:00Z"),
            ("user", XSS[0], "2025-03-01T09:02:00Z"),
            ("user", XSS[1], "2025-03-01T09:03:00Z"),
        ]
        added = post(
            f"/v1/sessions/{session['id']}/messages?wait=true",
            {"messages": [{"role": r, "content": t, "occurred_at": at} for r, t, at in turns]},
        )
        message_ids = [str(m["id"]) for m in added["data"]]  # type: ignore[union-attr,index]
        user_id = str(session["user_id"])
        memory = post(
            "/v1/memories",
            {
                "user_id": user_id,
                "content": "Alice lives in Lisbon",
                "categories": ["home"],
                "importance": 0.7,
                "source_message_ids": message_ids[:1],
            },
        )
        xss_memory = post("/v1/memories", {"user_id": user_id, "content": XSS[1], "categories": [XSS[2][:40]]})
        # A fact whose validity a newer one closed: it holds in 2024, not now.
        old = post(
            "/v1/facts",
            {
                "user_id": user_id,
                "subject": "Alice",
                "subject_type": "person",
                "predicate": "lives_in",
                "object": "Porto",
                "object_is_entity": True,
                "object_type": "place",
                "single_valued": True,
                "valid_from": "2019-01-01T00:00:00Z",
            },
        )
        new = post(
            "/v1/facts",
            {
                "user_id": user_id,
                "subject": "Alice",
                "subject_type": "person",
                "predicate": "lives_in",
                "object": "Lisbon",
                "object_is_entity": True,
                "object_type": "place",
                "single_valued": True,
                "valid_from": "2025-02-01T00:00:00Z",
            },
        )
        post(
            "/v1/facts",
            {
                "user_id": user_id,
                "subject": "Maria",
                "predicate": "sister_of",
                "object": "Alice",
                "object_is_entity": True,
            },
        )
        post(
            "/v1/facts",
            {"user_id": user_id, "subject": XSS[2], "predicate": "knows", "object": "Alice", "object_is_entity": True},
        )
        lisbon = new["fact"]["object_id"]  # type: ignore[index]
        found = c.get("/v1/entities", params={"q": "svg onload"}).json()["data"]
        document = post(
            "/v1/documents",
            {
                "title": XSS[0],
                "path": "notes/moving.md",
                "content": "# Moving\n\n## Lisbon\n\nAlice moved to Lisbon in 2025.\n\n## Porto\n\nMaria stays.\n",
            },
        )
        planner = post("/v1/agents", {"name": "planner", "type": "planner", "heartbeat_interval_s": 3600})
        worker = post(
            "/v1/agents",
            {"name": "worker-1", "type": "worker", "capabilities": ["summarize"], "heartbeat_interval_s": 3600},
        )
        post(f"/v1/agents/{worker['id']}/heartbeat", {"status": "busy"})
        task = post(
            "/v1/tasks",
            {
                "title": "Summarize the move",
                "queue": "writing",
                "priority": 5,
                "created_by": planner["id"],
                "assigned_to": worker["id"],
                "due_at": "2025-03-02T00:00:00Z",
                "session_ids": [session["id"]],
            },
        )
        post("/v1/tasks", {"title": XSS[0], "queue": "writing", "created_by": planner["id"]})
        post(
            "/v1/agent-messages",
            {
                "from_agent_id": planner["id"],
                "to_agent_id": worker["id"],
                "message_type": "handoff",
                "payload": {"note": XSS[1], "task": task["id"]},
                "task_id": task["id"],
            },
        )
        return Seeded(
            user_id=user_id,
            session_id=str(session["id"]),
            message_ids=message_ids,
            memory_id=str(memory["id"]),
            xss_memory_id=str(xss_memory["id"]),
            lisbon_entity_id=str(lisbon),
            xss_entity_id=str(found[0]["id"]),
            document_id=str(document["document"]["id"]),  # type: ignore[index]
            closed_fact_id=str(old["fact"]["id"]),  # type: ignore[index]
            worker_agent_id=str(worker["id"]),
            planner_agent_id=str(planner["id"]),
            task_id=str(task["id"]),
        )

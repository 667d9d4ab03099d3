"""Recency counts from when things happened (event time), not from when Engram stored them: an imported
history is not all new."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Org

pytestmark = pytest.mark.usefixtures("worker")

QUERY = "which city does alice live in?"


async def test_recency_ranks_the_most_recent_event_first_in_an_imported_history(org: Org) -> None:
    c = org.client
    now = datetime.now(UTC)
    session = (await c.post("/v1/sessions", json={"external_user_id": "alice"})).json()["id"]
    said = [  # imported out of event order: the newest event comes first
        ("I moved to Berlin.", 3),
        ("I live in Porto, the city I love.", 200),
        ("I live in Lisbon, a city by the sea.", 100),
    ]
    turns = [
        {"role": "user", "name": "Alice", "content": text, "occurred_at": (now - timedelta(days=days)).isoformat()}
        for text, days in said
    ]
    r = await c.post(f"/v1/sessions/{session}/messages", params={"wait": "true"}, json={"messages": turns})
    assert r.json()["job"]["status"] == "succeeded"
    body = {"query": QUERY, "external_user_id": "alice", "weights": {"recency": 1.0}, "explain": True}
    for types in (["messages", "memories"], ["messages", "memories", "facts"]):
        r = await c.post("/v1/search", json={**body, "types": types})
        results = r.json()["results"]
        assert "Berlin" in results[0]["content"], [(h["type"], h["content"]) for h in results]
        for hit in results:  # a memory or fact is as old as what it records
            recency = hit["explanation"]["recency"]
            assert ("Berlin" in hit["content"]) == (recency > 0.5), (hit["type"], hit["content"], recency)

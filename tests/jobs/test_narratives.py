"""A user's narrative says what holds now: facts valid now and memories that have not expired."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from engramdb.services.core.runtime import Runtime
from engramdb.services.distill import narratives
from engramdb.storage import queue
from tests.conftest import Org

pytestmark = pytest.mark.usefixtures("worker")


async def _narrate(org: Org, user: str) -> str:
    r = await org.client.post(f"/v1/users/{user}/narrative", params={"wait": "true"})
    assert r.status_code == 202 and r.json()["status"] == "succeeded", r.text
    return str((await org.client.get(f"/v1/users/{user}/narrative")).json()["content"])


async def _user(org: Org, name: str) -> str:
    r = await org.client.post("/v1/users", json={"external_id": name.lower(), "display_name": name})
    return str(r.json()["id"])


async def test_a_fact_closed_by_a_contradicting_one_leaves_the_narrative(org: Org) -> None:
    c = org.client
    user = await _user(org, "Alice")
    fact = {"subject": "Alice", "predicate": "lives_in", "user_id": user, "single_valued": True}
    assert (await c.post("/v1/facts", json={**fact, "object": "Lisbon"})).status_code == 201
    assert "Alice lives in Lisbon" in await _narrate(org, user)
    r = await c.post("/v1/facts", json={**fact, "object": "Berlin"})
    assert r.json()["action"] == "INVALIDATE"
    profile = await _narrate(org, user)
    assert "Alice lives in Berlin" in profile and "Lisbon" not in profile


async def test_expired_memories_leave_the_narrative(org: Org) -> None:
    c = org.client
    user = await _user(org, "Pat")
    memories = {}
    for content, expires_at in (
        ("Pat is training for a marathon", None),
        ("Pat works as a carpenter", None),
        ("Pat's locker code is 4412", "2000-01-01T00:00:00Z"),
    ):
        r = await c.post("/v1/memories", json={"user_id": user, "content": content, "expires_at": expires_at})
        memories[content] = r.json()["id"]
    first = await _narrate(org, user)
    assert "marathon" in first and "4412" not in first  # expired before the narrative was written
    r = await c.patch(
        f"/v1/memories/{memories['Pat is training for a marathon']}", json={"expires_at": "2001-01-01T00:00:00Z"}
    )
    assert r.status_code == 200, r.text
    second = await _narrate(org, user)
    assert "carpenter" in second and "marathon" not in second  # expired since: not carried forward


async def test_a_memory_that_expires_makes_the_narrative_stale(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    user = await _user(org, "Sam")
    soon = datetime.now(UTC) + timedelta(seconds=1)
    body = {"user_id": user, "content": "Sam is on holiday in Crete", "expires_at": soon.isoformat()}
    assert (await org.client.post("/v1/memories", json=body)).status_code == 201
    assert "Crete" in await _narrate(org, user)
    assert not await _stale(app.state.runtime, user)
    while datetime.now(UTC) <= soon + timedelta(milliseconds=100):
        await asyncio.sleep(0.1)
    assert await _stale(app.state.runtime, user)


async def _stale(rt: Runtime, user: str) -> bool:
    async with rt.db.system() as conn:
        rows = (await conn.execute(narratives._STALE, {"kind": queue.NARRATE, "limit": 1000})).all()
    return any(str(user_id) == user for _, user_id in rows)

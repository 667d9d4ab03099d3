"""Review proofs: bi-temporal edge cases."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import Org


async def _fact(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    r = await client.post("/v1/facts", json=body)
    assert r.status_code == 201, r.text
    out: dict[str, object] = r.json()
    return out


async def _objects(client: httpx.AsyncClient, **params: str) -> list[str]:
    r = await client.get("/v1/facts", params=params)
    assert r.status_code == 200, r.text
    return sorted(str(f["object"]) for f in r.json()["data"])


BASE = {"predicate": "lives_in", "object_is_entity": True, "single_valued": True, "object_type": "place"}


async def test_moving_back_to_a_previous_city(org: Org) -> None:
    c = org.client
    b = {**BASE, "subject": "Ann"}
    await _fact(c, **b, object="Lisbon", valid_from="2020-01-01T00:00:00Z")
    await _fact(c, **b, object="Porto", valid_from="2022-01-01T00:00:00Z")
    back = await _fact(c, **b, object="Lisbon", valid_from="2024-01-01T00:00:00Z")
    print("move back action:", back["action"])
    assert await _objects(c, subject="Ann", valid_at="2024-06-01T00:00:00Z") == ["Lisbon"]


async def test_a_closed_historical_stay_does_not_end_the_current_one(org: Org) -> None:
    c = org.client
    b = {**BASE, "subject": "Ben"}
    await _fact(c, **b, object="Lisbon", valid_from="2020-01-01T00:00:00Z")
    old = await _fact(
        c, **b, object="Lisbon", valid_from="2010-01-01T00:00:00Z", valid_until="2012-01-01T00:00:00Z"
    )
    print("historical action:", old["action"], old["fact"])
    assert await _objects(c, subject="Ben", valid_at="2023-01-01T00:00:00Z") == ["Lisbon"]


async def test_older_dated_news_does_not_close_an_undated_newer_fact(org: Org) -> None:
    c = org.client
    b = {**BASE, "subject": "Cid"}
    await _fact(c, **b, object="Porto")  # undated, stated now
    late = await _fact(c, **b, object="Lisbon", valid_from="2015-01-01T00:00:00Z")
    print("late action:", late["action"])
    assert await _objects(c, subject="Cid", valid_at="2025-01-01T00:00:00Z") == ["Porto"]


async def test_two_concurrent_writers_leave_one_open_fact(org: Org) -> None:
    c = org.client
    bad = 0
    for i in range(6):
        subj = f"Dan{i}"
        b = {**BASE, "subject": subj}
        await asyncio.gather(
            *(c.post("/v1/facts", json={**b, "object": city}) for city in ("Rome", "Oslo", "Kyiv"))
        )
        r = await c.get("/v1/facts", params={"subject": subj})
        open_now = [f["object"] for f in r.json()["data"] if f["valid_until"] is None]
        if len(open_now) != 1:
            bad += 1
            print(subj, open_now)
    assert bad == 0, f"{bad} of 6 subjects ended with several open single-valued facts"


async def test_concurrent_writers_with_an_existing_fact(org: Org) -> None:
    c = org.client
    bad = 0
    for i in range(6):
        subj = f"Eve{i}"
        b = {**BASE, "subject": subj}
        await _fact(c, **b, object="Paris")
        await asyncio.gather(*(c.post("/v1/facts", json={**b, "object": city}) for city in ("Rome", "Oslo")))
        r = await c.get("/v1/facts", params={"subject": subj})
        open_ = [f["object"] for f in r.json()["data"] if f["valid_until"] is None]
        if len(open_) != 1:
            bad += 1
            print(subj, open_)
    assert bad == 0, f"{bad} of 6 subjects ended with several open single-valued facts"

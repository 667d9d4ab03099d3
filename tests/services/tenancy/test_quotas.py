"""The rate limiter's pace (GCRA, services/tenancy/quotas.py): a quiet client may send its burst at once,
then one request per interval; the allowance comes back evenly, not all at once; a refused request moves
nothing; the answer says how long to wait. Intervals here are a quarter of a second, and each check sleeps
at least a third of one past the moment it relies on, so a slow machine cannot turn a pass into a fail."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from engramdb.config import Settings
from engramdb.services.core.caller import Caller
from engramdb.services.tenancy import keys, quotas
from engramdb.storage.database import Database

INTERVAL_S = 0.25  # 8 per 2-second window


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        rate_limit_window_s=2,
        rate_limit_burst=0.25,  # 2 of the 8 at once
        rate_limit_writes=8,
        org_rate_limit_searches=8,
    )


async def _key_caller(db: Database) -> Caller:
    _, created = await keys.create_organization(db, name=f"org-{uuid.uuid4().hex[:8]}")
    return await keys.authenticate(db, created.api_key)


async def _allowed(db: Database, caller: Caller, settings: Settings, n: int, cls: str = "writes") -> list[bool]:
    out = []
    for _ in range(n):
        decision = await quotas.hit(db, caller, cls, settings)  # type: ignore[arg-type]
        assert decision is not None
        out.append(decision.allowed)
    return out


async def test_a_burst_then_one_per_interval(db: Database, settings: Settings) -> None:
    caller = await _key_caller(db)
    first = await quotas.hit(db, caller, "writes", settings)
    assert first is not None and first.allowed and (first.limit, first.remaining, first.scope) == (8, 1, "key")
    assert first.reset_s == 1  # one interval ahead: the whole allowance is back within a second
    second = await quotas.hit(db, caller, "writes", settings)
    assert second is not None and second.allowed and second.remaining == 0
    refused = await quotas.hit(db, caller, "writes", settings)
    assert refused is not None and not refused.allowed and refused.remaining == 0
    assert refused.reset_s == 1  # the next request is allowed within an interval, rounded up to a second
    # Refused requests move nothing: hammering does not push the next allowed request further away.
    assert await _allowed(db, caller, settings, 5) == [False] * 5
    await asyncio.sleep(INTERVAL_S * 1.4)
    # One interval later one request is allowed, not a whole new burst.
    assert await _allowed(db, caller, settings, 2) == [True, False]


async def test_the_allowance_comes_back_evenly(db: Database, settings: Settings) -> None:
    caller = await _key_caller(db)
    assert await _allowed(db, caller, settings, 3) == [True, True, False]
    await asyncio.sleep(INTERVAL_S * 3.4)  # three intervals: but the burst caps what a pause saves up
    assert await _allowed(db, caller, settings, 3) == [True, True, False]


async def test_organization_limits_pace_every_key_together(db: Database, settings: Settings) -> None:
    caller = await _key_caller(db)
    operator = Caller.operator(caller.org_id)  # a keyless caller: only the organization's limit applies
    decision = await quotas.hit(db, operator, "searches", settings)
    assert decision is not None and decision.allowed and decision.scope == "org" and decision.limit == 8
    assert await _allowed(db, caller, settings, 2, "searches") == [True, False]
    no_limit = await quotas.hit(db, caller, "reads", settings)
    assert no_limit is None

"""The rate limiter's pace (GCRA, services/tenancy/quotas.py): a quiet client may send its burst at once,
then one request per interval; the allowance comes back evenly, not all at once; a refused request moves
nothing; the answer says how long to wait, also under concurrent requests. Time is moved by moving the
counters back (as the clock moving forward would), never by sleeping, so a slow machine changes nothing.

The limit is 7 per minute: one request every 8.571429 s, a burst of ceil(7 × 0.25) = 2."""

from __future__ import annotations

import asyncio
import uuid

import psycopg
import pytest

from engramdb.config import Settings
from engramdb.schemas.limits import LimitsUpdate, LimitValues
from engramdb.services.core.caller import Caller
from engramdb.services.tenancy import keys, quotas
from engramdb.storage.database import Database

INTERVAL_S = 60 / 7


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        key_touch_interval_s=0,
        rate_limit_window_s=60,
        rate_limit_burst=0.25,
        rate_limit_writes=7,
        org_rate_limit_searches=7,
    )


async def _key_caller(db: Database) -> Caller:
    _, created = await keys.create_organization(db, name=f"org-{uuid.uuid4().hex[:8]}")
    return await keys.authenticate(db, created.api_key)


def _advance(database_url: str, caller: Caller, seconds: float) -> None:
    """As if ``seconds`` had passed for the organization's counters."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE rate_counter SET tat = tat - make_interval(secs => %s) WHERE org_id = %s", (seconds, caller.org_id)
        )


def _ahead_s(database_url: str, caller: Caller) -> float:
    """How far the caller's key's counter of writes runs ahead of the clock."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM tat - now()) FROM rate_counter WHERE org_id = %s AND key_id = %s "
            "AND route_class = 'writes'",
            (caller.org_id, caller.key_id),
        ).fetchone()
    assert row is not None
    return float(row[0])


async def _hits(db: Database, caller: Caller, settings: Settings, n: int, cls: str = "writes") -> list[quotas.Decision]:
    out = []
    for _ in range(n):
        decision = await quotas.hit(db, caller, cls, settings)  # type: ignore[arg-type]
        assert decision is not None
        out.append(decision)
    return out


async def test_a_burst_then_one_per_interval(db: Database, database_url: str, settings: Settings) -> None:
    caller = await _key_caller(db)
    first, second, refused = await _hits(db, caller, settings, 3)
    assert (first.allowed, first.limit, first.remaining, first.scope) == (True, 7, 1, "key")
    assert first.reset_s == 9  # one interval ahead: the whole burst is back in 8.57 s
    assert (second.allowed, second.remaining, second.reset_s) == (True, 0, 18)
    # The next request is allowed once the counter is back to one interval ahead: 8.57 s, rounded up.
    assert (refused.allowed, refused.remaining, refused.reset_s) == (False, 0, 9)
    # Refused requests move nothing: hammering does not push the next allowed request further away.
    assert [d.reset_s for d in await _hits(db, caller, settings, 5)] == [9] * 5
    _advance(database_url, caller, INTERVAL_S + 0.1)
    # One interval later one request is allowed, not a whole new burst.
    assert [d.allowed for d in await _hits(db, caller, settings, 2)] == [True, False]
    # A long pause saves up no more than the burst.
    _advance(database_url, caller, 100 * INTERVAL_S)
    assert [d.allowed for d in await _hits(db, caller, settings, 3)] == [True, True, False]


async def test_remaining_counts_whole_requests(db: Database, settings: Settings) -> None:
    """An interval that is not a whole number of microseconds does not cost a request of the remainder."""
    caller = await _key_caller(db)
    whole = settings.model_copy(update={"rate_limit_burst": 1.0})
    decisions = await _hits(db, caller, whole, 8)
    assert [d.remaining for d in decisions[:7]] == [6, 5, 4, 3, 2, 1, 0]
    assert not decisions[7].allowed and decisions[7].reset_s == 9


async def test_concurrent_refusals_all_say_how_long_to_wait(db: Database, settings: Settings) -> None:
    caller = await _key_caller(db)
    decisions = await asyncio.gather(*(quotas.hit(db, caller, "writes", settings) for _ in range(30)))
    allowed = [d for d in decisions if d is not None and d.allowed]
    refused = [d for d in decisions if d is not None and not d.allowed]
    assert len(allowed) == 2 and len(refused) == 28
    assert {d.reset_s for d in refused} == {9}  # from the counter as it was locked, not an older snapshot


async def test_a_request_its_organization_refuses_costs_its_key_nothing(
    db: Database, database_url: str, settings: Settings
) -> None:
    caller = await _key_caller(db)
    tight = settings.model_copy(update={"org_rate_limit_writes": 1})  # the organization: 1 per minute
    allowed, refused = await _hits(db, caller, tight, 2)
    assert allowed.allowed and (refused.allowed, refused.scope, refused.limit) == (False, "org", 1)
    assert refused.reset_s == 60
    # The key's counter moved once (the allowed request), not twice.
    assert INTERVAL_S - 1 < _ahead_s(database_url, caller) <= INTERVAL_S


async def test_organization_limits_pace_every_key_together(db: Database, settings: Settings) -> None:
    caller = await _key_caller(db)
    operator = Caller.operator(caller.org_id)  # a keyless caller: only the organization's limit applies
    first = await quotas.hit(db, operator, "searches", settings)
    assert first is not None and first.allowed and (first.scope, first.limit, first.remaining) == ("org", 7, 1)
    assert [d.allowed for d in await _hits(db, caller, settings, 2, "searches")] == [True, False]
    assert await quotas.hit(db, caller, "reads", settings) is None  # no limit on reads


async def test_a_keyless_caller_ignores_per_key_limits(db: Database, settings: Settings) -> None:
    """An organization's own per-key limit applies to keys; the operator's calls have none to count in."""
    caller = await _key_caller(db)
    operator = Caller.operator(caller.org_id)
    await quotas.replace(db, operator, LimitsUpdate(writes=LimitValues(per_key=3, per_org=5)), settings)
    decisions = [await quotas.hit(db, operator, "writes", settings) for _ in range(3)]
    assert [(d.allowed, d.scope, d.limit) for d in decisions if d is not None] == [
        (True, "org", 5),
        (True, "org", 5),
        (False, "org", 5),  # the organization's burst of ceil(5 × 0.25) = 2, never a per-key 3
    ]

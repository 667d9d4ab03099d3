"""``Turns``, the bound on requests at work in one process: first come first served, a bounded wait, a
turn handed straight to the next waiter, and nothing leaked when a waiter gives up or is cancelled."""

from __future__ import annotations

import asyncio

import pytest

from engramdb.api.admission import Turns


async def test_turns_are_taken_up_to_the_limit_and_then_refused_after_the_wait() -> None:
    turns = Turns(limit=2, wait_s=0.05)
    assert await turns.take() and await turns.take()
    assert turns.active == 2
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert not await turns.take()  # nobody gave one back within 50 ms
    assert loop.time() - started >= 0.04
    assert turns.waiting == 0 and turns.active == 2
    turns.give_back()
    assert await turns.take()
    assert turns.active == 2


async def test_a_returned_turn_goes_to_the_longest_waiter() -> None:
    turns = Turns(limit=1, wait_s=5)
    assert await turns.take()
    order: list[str] = []

    async def wait(name: str) -> None:
        assert await turns.take()
        order.append(name)

    first = asyncio.create_task(wait("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(wait("second"))
    await asyncio.sleep(0)
    assert turns.waiting == 2
    turns.give_back()  # handed to "first": a newcomer now does not jump the queue
    newcomer = Turns(limit=0, wait_s=0)  # (the same rule, from the empty side: no turn, no wait, refused)
    assert not await newcomer.take()
    assert turns.active == 1 and not await asyncio.wait_for(_take_now(turns), 1)
    await first
    assert order == ["first"] and turns.active == 1
    turns.give_back()
    await second
    assert order == ["first", "second"]
    turns.give_back()
    assert turns.active == 0


async def test_no_wait_refuses_at_once_when_full() -> None:
    turns = Turns(limit=1, wait_s=0)
    assert await turns.take()
    assert not await turns.take()
    turns.give_back()
    assert turns.active == 0


async def test_a_cancelled_waiter_leaves_no_turn_behind() -> None:
    turns = Turns(limit=1, wait_s=5)
    assert await turns.take()
    waiter = asyncio.create_task(turns.take())
    await asyncio.sleep(0)
    assert turns.waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert turns.waiting == 0
    turns.give_back()
    assert turns.active == 0  # freed, not handed to the cancelled waiter
    assert await turns.take()


async def test_a_waiter_cancelled_just_after_being_handed_a_turn_passes_it_on() -> None:
    turns = Turns(limit=1, wait_s=5)
    assert await turns.take()
    doomed = asyncio.create_task(turns.take())
    await asyncio.sleep(0)
    later = asyncio.create_task(turns.take())
    await asyncio.sleep(0)
    turns.give_back()  # handed to ``doomed``…
    doomed.cancel()  # …which is gone before it runs again
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert await later  # the turn reached the next waiter
    assert turns.active == 1 and turns.waiting == 0


async def _take_now(turns: Turns) -> bool:
    """Take without waiting: what a newcomer gets while earlier requests wait."""
    patient, turns.wait_s = turns.wait_s, 0
    try:
        return await turns.take()
    finally:
        turns.wait_s = patient

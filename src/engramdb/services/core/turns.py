"""A request's turn, as the code that serves it sees it.

The API works on a bounded number of requests at once per process (``api/admission.py``, ``Turns``). Two
kinds of request must not sit on a turn while the CPU is not theirs to use:

* one that waits for other work to finish (``wait=true``: a job it queued) gives its turn back first
  (:func:`step_aside`): the worker, not the request, needs the CPU meanwhile;
* one whose body arrives at the sender's pace (an offload) is let in without a turn and takes one once its
  body is read (:func:`take`), so a slow sender holds none while it sends.

Both are no-ops outside a request that has a turn to give or take (the CLI, jobs, tests of services).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Turn:
    """What the request's admission left for its handler: how to give its turn back, or to take one."""

    give_back: Callable[[], None] | None = None
    take: Callable[[], Awaitable[None]] | None = None


CURRENT: ContextVar[Turn | None] = ContextVar("engram_turn", default=None)


def step_aside() -> None:
    """Give the request's turn back, if it holds one (for good: what is left is to answer)."""
    turn = CURRENT.get()
    if turn is not None and turn.give_back is not None:
        give_back, turn.give_back = turn.give_back, None
        give_back()


async def take() -> None:
    """Take a turn for a request let in without one (its body is read now); raises ``Overloaded`` when
    none comes in time, like a request refused at the door."""
    turn = CURRENT.get()
    if turn is not None and turn.take is not None:
        take_one, turn.take = turn.take, None
        await take_one()

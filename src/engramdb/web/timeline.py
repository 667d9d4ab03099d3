"""The geometry of the facts timeline: both time axes of each fact version as bars on one scale.

Valid time (``valid_from`` → ``valid_until``: when it was true) and system time (``recorded_at`` →
``superseded_at``: when Engram believed it) are drawn one above the other, with a line at each as-of
time. Computed here, so the template only places numbers in SVG attributes (no inline style, which the
Content-Security-Policy forbids) and the page needs no script to draw it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engramdb.schemas.graph import Fact

WIDTH = 1000.0  # the SVG's user units; it scales to the page
LABEL = 340.0  # left column for the statement
ROW = 34.0
TOP = 28.0
TICKS = 5


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    open_end: bool  # still true / still believed (runs to now)


@dataclass(frozen=True)
class Row:
    fact: Fact
    y: float
    valid: Bar
    believed: Bar
    believed_now: bool
    true_at: bool  # true at the valid-time as-of (and believed at the known-time as-of)


@dataclass(frozen=True)
class Timeline:
    rows: list[Row]
    height: float
    ticks: list[tuple[float, str]]
    valid_x: float | None
    known_x: float | None
    start: datetime
    end: datetime


def build(facts: list[Fact], *, valid_at: datetime | None, known_at: datetime | None, now: datetime) -> Timeline:
    times = [now]
    for fact in facts:
        times += [t for t in (fact.valid_from, fact.valid_until, fact.recorded_at, fact.superseded_at) if t]
    times += [t for t in (valid_at, known_at) if t]
    start, end = min(times), max(times)
    if end - start < timedelta(days=1):
        start -= timedelta(hours=12)
        end += timedelta(hours=12)
    span = (end - start).total_seconds()
    pad = span * 0.03
    start, end = start - timedelta(seconds=pad), end + timedelta(seconds=pad)
    span = (end - start).total_seconds()
    inner = WIDTH - LABEL - 10

    def x(at: datetime) -> float:
        return round(LABEL + inner * (at - start).total_seconds() / span, 1)

    def bar(begin: datetime | None, finish: datetime | None) -> Bar:
        left = x(begin or start)
        right = x(finish or end)
        return Bar(x=left, width=max(2.0, round(right - left, 1)), open_end=finish is None)

    rows = []
    for index, fact in enumerate(sorted(facts, key=lambda f: (f.subject, f.predicate, f.valid_from or f.recorded_at))):
        rows.append(
            Row(
                fact=fact,
                y=TOP + index * ROW,
                valid=bar(fact.valid_from, fact.valid_until),
                believed=bar(fact.recorded_at, fact.superseded_at),
                believed_now=fact.superseded_at is None,
                true_at=_holds(fact, valid_at, known_at, now),
            )
        )
    ticks = [
        (x(start + (end - start) * i / TICKS), _label(start + (end - start) * i / TICKS)) for i in range(TICKS + 1)
    ]
    return Timeline(
        rows=rows,
        height=TOP + max(1, len(rows)) * ROW + 8,
        ticks=ticks,
        valid_x=x(valid_at) if valid_at else None,
        known_x=x(known_at) if known_at else None,
        start=start,
        end=end,
    )


def _holds(fact: Fact, valid_at: datetime | None, known_at: datetime | None, now: datetime) -> bool:
    """The rule ``facts.list_facts`` applies (``facts.as_of``), to mark the rows the as-of list shows:
    believed at ``known_at`` (now when None) and, when ``valid_at`` is given, true then."""
    if known_at is None:
        believed = fact.superseded_at is None
    else:
        believed = fact.recorded_at <= known_at and (fact.superseded_at is None or fact.superseded_at > known_at)
    if valid_at is None:
        return believed
    true = (fact.valid_from is None or fact.valid_from <= valid_at) and (
        fact.valid_until is None or fact.valid_until > valid_at
    )
    return believed and true


def _label(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d")

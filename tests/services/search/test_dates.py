"""Time expressions in a query resolve to the window of event time they name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engramdb.services.search.dates import window

NOW = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)  # a Thursday


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=UTC)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("What did Maria cook on May 3, 2023?", (day(2023, 5, 3), day(2023, 5, 4))),
        ("the film she saw on 1 May, 2022", (day(2022, 5, 1), day(2022, 5, 2))),
        ("notes from Sept 5th 2020", (day(2020, 9, 5), day(2020, 9, 6))),
        ("the 2023-10-13 standup", (day(2023, 10, 13), day(2023, 10, 14))),
        ("what changed in December 2023", (day(2023, 12, 1), day(2024, 1, 1))),
        ("where did we go in 2019?", (day(2019, 1, 1), day(2020, 1, 1))),
        ("what did I say yesterday", (day(2026, 12, 2), day(2026, 12, 3))),
        ("anything new today?", (day(2026, 12, 3), day(2026, 12, 4))),
        ("the plan from last week", (day(2026, 11, 23), day(2026, 11, 30))),
        ("last month's budget", (day(2026, 11, 1), day(2026, 12, 1))),
        ("goals set last year", (day(2025, 1, 1), day(2026, 1, 1))),
        ("the trip last May", (day(2026, 5, 1), day(2026, 6, 1))),
        ("the party last December", (day(2025, 12, 1), day(2026, 1, 1))),
        # The first expression counts; at one place the most precise reading wins.
        ("on March 2, 2024 or in 2020", (day(2024, 3, 2), day(2024, 3, 3))),
    ],
)
def test_expressions_resolve_to_windows(query: str, expected: tuple[datetime, datetime]) -> None:
    assert window(query, NOW) == expected


@pytest.mark.parametrize(
    "query",
    [
        "what may I bring to the party?",  # the verb is not a month
        "he paid 2000 dollars",  # a bare number is not a year
        "the week before the trip",  # relative to an event: left to the retrievers
        "what did Alice adopt?",
    ],
)
def test_queries_without_a_time_have_no_window(query: str) -> None:
    assert window(query, NOW) is None


def test_an_impossible_date_is_skipped_for_the_next_expression() -> None:
    assert window("February 30, 2023, or was it in 2022", NOW) == (day(2022, 1, 1), day(2023, 1, 1))

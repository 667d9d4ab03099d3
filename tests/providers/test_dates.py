from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engramdb.providers.extraction.dates import DateMention, find_dates, resolve_date

MONDAY = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)  # "1:56 pm on 8 May, 2023", a Monday
SATURDAY = datetime(2023, 5, 13, 10, 0, tzinfo=UTC)


def only(text: str, reference: datetime = MONDAY) -> DateMention:
    mentions = find_dates(text, reference)
    assert len(mentions) == 1, mentions
    return mentions[0]


@pytest.mark.parametrize(
    ("text", "day", "granularity", "label"),
    [
        ("yesterday", date(2023, 5, 7), "day", "7 May 2023"),
        ("last night", date(2023, 5, 7), "day", "7 May 2023"),
        ("yesterday morning", date(2023, 5, 7), "day", "7 May 2023"),
        ("today", date(2023, 5, 8), "day", "8 May 2023"),
        ("tonight", date(2023, 5, 8), "day", "8 May 2023"),
        ("this morning", date(2023, 5, 8), "day", "8 May 2023"),
        ("tomorrow", date(2023, 5, 9), "day", "9 May 2023"),
        ("the day before yesterday", date(2023, 5, 6), "day", "6 May 2023"),
        ("the day after tomorrow", date(2023, 5, 10), "day", "10 May 2023"),
        ("last week", date(2023, 5, 1), "week", "the week of 1 May 2023"),
        ("this week", date(2023, 5, 8), "week", "the week of 8 May 2023"),
        ("next week", date(2023, 5, 15), "week", "the week of 15 May 2023"),
        ("last month", date(2023, 4, 1), "month", "April 2023"),
        ("next month", date(2023, 6, 1), "month", "June 2023"),
        ("last year", date(2022, 1, 1), "year", "2022"),
        ("next year", date(2024, 1, 1), "year", "2024"),
        ("last weekend", date(2023, 5, 6), "week", "the weekend of 6 May 2023"),
        ("this weekend", date(2023, 5, 13), "week", "the weekend of 13 May 2023"),
        ("next weekend", date(2023, 5, 13), "week", "the weekend of 13 May 2023"),
        ("3 days ago", date(2023, 5, 5), "day", "5 May 2023"),
        ("two weeks ago", date(2023, 4, 24), "week", "the week of 24 April 2023"),
        ("a month ago", date(2023, 4, 1), "month", "April 2023"),
        ("five years ago", date(2018, 1, 1), "year", "2018"),
        ("a couple of days ago", date(2023, 5, 6), "day", "6 May 2023"),
        ("a few days ago", date(2023, 5, 1), "week", "the week of 1 May 2023"),
        ("several weeks ago", date(2023, 4, 1), "month", "April 2023"),
        ("in 3 days", date(2023, 5, 11), "day", "11 May 2023"),
        ("in two weeks", date(2023, 5, 22), "week", "the week of 22 May 2023"),
        ("last Friday", date(2023, 5, 5), "day", "5 May 2023"),
        ("last Monday", date(2023, 5, 1), "day", "1 May 2023"),
        ("next Tuesday", date(2023, 5, 9), "day", "9 May 2023"),
        ("next Monday", date(2023, 5, 15), "day", "15 May 2023"),
        ("this Friday", date(2023, 5, 12), "day", "12 May 2023"),
        ("May 7", date(2023, 5, 7), "day", "7 May 2023"),
        ("May 7th, 2021", date(2021, 5, 7), "day", "7 May 2021"),
        ("7 May 2023", date(2023, 5, 7), "day", "7 May 2023"),
        ("the 7th of May", date(2023, 5, 7), "day", "7 May 2023"),
        ("Dec 25", date(2022, 12, 25), "day", "25 December 2022"),
        ("2023-05-07", date(2023, 5, 7), "day", "7 May 2023"),
        ("May 2023", date(2023, 5, 1), "month", "May 2023"),
        ("September of 2021", date(2021, 9, 1), "month", "September 2021"),
        ("in March", date(2023, 3, 1), "month", "March 2023"),
        ("in December", date(2022, 12, 1), "month", "December 2022"),
        ("last December", date(2022, 12, 1), "month", "December 2022"),
        ("next March", date(2024, 3, 1), "month", "March 2024"),
        ("in 2019", date(2019, 1, 1), "year", "2019"),
        ("last summer", date(2022, 6, 1), "year", "summer 2022"),
        ("this summer", date(2023, 6, 1), "year", "summer 2023"),
        ("next winter", date(2023, 12, 1), "year", "winter 2023-24"),
    ],
)
def test_expressions_resolve_against_the_reference(text: str, day: date, granularity: str, label: str) -> None:
    mention = only(text)
    assert mention.start == datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert (mention.granularity, mention.label, mention.since) == (granularity, label, False)


@pytest.mark.parametrize(
    ("text", "phrase", "span"),
    [
        ("I went to a support group yesterday and loved it", "on 7 May 2023", "yesterday"),
        ("We met on May 7 at the park", "on 7 May 2023", "on May 7"),
        ("She was born in May 2023.", "in May 2023", "in May 2023"),
        ("I moved to Lisbon last month.", "in April 2023", "last month"),
        ("We went camping last weekend!", "on the weekend of 6 May 2023", "last weekend"),
        ("I painted it back in 2019.", "in 2019", "back in 2019"),
        ("I've lived here since 2020.", "since 2020", "since 2020"),
        ("I've been vegan since last year.", "since 2022", "since last year"),
    ],
)
def test_the_span_includes_its_preposition_and_the_phrase_replaces_it(text: str, phrase: str, span: str) -> None:
    mention = only(text)
    start, end = mention.span
    assert text[start:end] == span
    assert mention.phrase == phrase
    assert mention.since == phrase.startswith("since")


@pytest.mark.parametrize(
    "text",
    [
        "I may go to the park",
        "I walked home after work",
        "We walked in 2000 steps",
        "Maybe one day",
        "It's a long way to go",
        "I march on",
        "",
    ],
)
def test_text_without_a_date_gives_nothing(text: str) -> None:
    assert find_dates(text, MONDAY) == []
    assert resolve_date(text, MONDAY) is None


def test_weekends_and_weekdays_from_a_saturday() -> None:
    assert only("last weekend", SATURDAY).start.date() == date(2023, 5, 6)
    assert only("next weekend", SATURDAY).start.date() == date(2023, 5, 20)
    assert only("last Saturday", SATURDAY).start.date() == date(2023, 5, 6)
    assert only("last Friday", SATURDAY).start.date() == date(2023, 5, 12)


def test_month_arithmetic_crosses_the_year() -> None:
    january = datetime(2024, 1, 15, tzinfo=UTC)
    assert only("last month", january).label == "December 2023"
    assert only("3 months ago", january).label == "October 2023"
    assert only("in 2 months", datetime(2023, 11, 30, tzinfo=UTC)).label == "January 2024"


def test_the_reference_is_read_in_utc() -> None:
    early_in_karachi = datetime(2023, 5, 8, 1, 0, tzinfo=timezone(timedelta(hours=5)))  # 7 May, 20:00 UTC
    assert only("yesterday", early_in_karachi).label == "6 May 2023"
    assert only("yesterday", datetime(2023, 5, 8, 9, 0)).label == "7 May 2023"  # naive: taken as UTC


def test_find_dates_lists_every_expression_in_order() -> None:
    text = "Last year I visited Rome, and yesterday I booked a trip for next month"
    assert [m.label for m in find_dates(text, MONDAY)] == ["2022", "7 May 2023", "June 2023"]


def test_resolve_date_prefers_the_most_specific_then_the_first() -> None:
    text = "In 2022 I went there on May 7"
    mention = resolve_date(text, MONDAY)
    assert mention is not None and mention.label == "7 May 2023"
    assert text[mention.span[0] : mention.span[1]] == "on May 7"
    mention = resolve_date("yesterday or the day before yesterday", MONDAY)
    assert mention is not None and mention.label == "7 May 2023"


def test_a_longer_expression_wins_over_a_part_of_it() -> None:
    assert [m.label for m in find_dates("on 7 May 2023", MONDAY)] == ["7 May 2023"]
    assert [m.label for m in find_dates("in May 2021", MONDAY)] == ["May 2021"]


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("yesterday", datetime(2023, 5, 8, tzinfo=UTC)),
        ("last week", datetime(2023, 5, 8, tzinfo=UTC)),
        ("last weekend", datetime(2023, 5, 8, tzinfo=UTC)),
        ("last month", datetime(2023, 5, 1, tzinfo=UTC)),
        ("in December", datetime(2023, 1, 1, tzinfo=UTC)),
        ("last year", datetime(2023, 1, 1, tzinfo=UTC)),
    ],
)
def test_end_is_the_first_moment_after_the_period(text: str, end: datetime) -> None:
    assert only(text).end == end


def test_an_impossible_day_is_not_a_date() -> None:
    assert find_dates("on February 30", MONDAY) == []
    assert find_dates("2023-13-01", MONDAY) == []


@given(st.text(alphabet=st.sampled_from(list("abcdeilmnorstuwy0123456789 -,.MJ")), max_size=80))
def test_spans_lie_in_the_text_in_order_without_overlap(text: str) -> None:
    mentions = find_dates(text, MONDAY)
    ends = [0] + [m.span[1] for m in mentions]
    for mention, previous_end in zip(mentions, ends, strict=False):
        start, end = mention.span
        assert previous_end <= start < end <= len(text)
        assert mention.start.tzinfo is UTC and mention.start < mention.end

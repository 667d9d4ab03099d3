"""Dates in chat text, resolved against the moment the message was sent.

People rarely write absolute dates in conversation: they say "yesterday", "last Friday", "two weeks ago".
A memory stored as "Caroline went to a support group yesterday" is useless a month later, so the offline
extractor rewrites the expression as an absolute date and records when the event happened. Everything here
is a pure function of ``(text, reference)``; nothing reads the clock.

Conventions, chosen so that the answer is the one most people mean:

- weeks run Monday to Sunday; a week-granular date starts on its Monday, a weekend on its Saturday;
- "last Friday" is the latest Friday strictly before the reference day, "next Friday" the first after it;
- a date without a year ("May 7", "in March") takes the year that puts it nearest to the reference;
- "a few" / "several" widen the granularity by one step (a few days ago: that week, not a given day);
- seasons are Northern-hemisphere and year-granular ("last summer": summer 2022, starting 1 June 2022).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Granularity = Literal["day", "week", "month", "year"]
_RANK: dict[Granularity, int] = {"day": 0, "week": 1, "month": 2, "year": 3}
_WIDER: dict[Granularity, Granularity] = {"day": "week", "week": "month", "month": "year", "year": "year"}

MONTHS = "january february march april may june july august september october november december".split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_MONTH_NUMBER = (
    {name: i + 1 for i, name in enumerate(MONTHS)} | {name[:3]: i + 1 for i, name in enumerate(MONTHS)} | {"sept": 9}
)
_SEASON_MONTH = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "couple": 2, "a couple": 2, "a couple of": 2,
    "couple of": 2,
}  # fmt: skip
_FUZZY_WORDS = {"few": 3, "a few": 3, "several": 4}


@dataclass(frozen=True)
class DateMention:
    """A date expression found in a text.

    ``start`` is the first day of the period at midnight UTC; ``span`` covers the expression in the text
    including a leading preposition ("on May 7", "since 2020"), so that replacing the span with
    ``phrase`` reads naturally. ``since`` marks a state that began then rather than an event.
    """

    start: datetime
    granularity: Granularity
    span: tuple[int, int]
    label: str
    since: bool = False

    @property
    def end(self) -> datetime:
        """The first moment after the period (a weekend ends on its Monday)."""
        if self.granularity == "day":
            return self.start + timedelta(days=1)
        if self.granularity == "week":
            return self.start + timedelta(days=7 - self.start.weekday())
        if self.granularity == "month":
            following = _month(self.start.year, self.start.month + 1)[0]
        else:
            following = date(self.start.year + 1, self.start.month, 1)
        return datetime(following.year, following.month, following.day, tzinfo=UTC)

    @property
    def phrase(self) -> str:
        """The absolute form to put in place of the span: "on 7 May 2023", "in April 2023", "since 2020"."""
        if self.since:
            return f"since {self.label}"
        if self.granularity == "day" or self.label.startswith("the weekend"):
            return f"on {self.label}"
        return f"in {self.label}"


def day_label(day: date) -> str:
    """``7 May 2023``: the date form used in every rewritten memory."""
    return f"{day.day} {MONTHS[day.month - 1].capitalize()} {day.year}"


# A resolved expression before its span and preposition are known: (first day, granularity, label).
_Resolved = tuple[date, Granularity, str]
_Handler = Callable[["re.Match[str]", date], "_Resolved | None"]


def _day(d: date) -> _Resolved:
    return d, "day", day_label(d)


def _week(d: date) -> _Resolved:
    monday = d - timedelta(days=d.weekday())
    return monday, "week", f"the week of {day_label(monday)}"


def _weekend(saturday: date) -> _Resolved:
    return saturday, "week", f"the weekend of {day_label(saturday)}"


def _month(year: int, month: int) -> _Resolved:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return date(year, month, 1), "month", f"{MONTHS[month - 1].capitalize()} {year}"


def _year(year: int) -> _Resolved:
    return date(year, 1, 1), "year", str(year)


def _shift(ref: date, unit: str, n: int) -> _Resolved:
    """``ref`` moved by ``n`` units (negative: into the past), at that unit's granularity."""
    if unit == "day":
        return _day(ref + timedelta(days=n))
    if unit == "week":
        return _week(ref + timedelta(weeks=n))
    if unit == "month":
        return _month(ref.year, ref.month + n)
    return _year(ref.year + n)


def _widen(resolved: _Resolved) -> _Resolved:
    """The period one step coarser that contains ``resolved`` (for "a few days ago")."""
    start, granularity, _ = resolved
    wider = _WIDER[granularity]
    if wider == "week":
        return _week(start)
    if wider == "month":
        return _month(start.year, start.month)
    return _year(start.year)


def _count(word: str) -> tuple[int, bool] | None:
    """How many units a number word says, and whether the count is vague ("a few")."""
    word = " ".join(word.lower().split())
    if word.isdigit():
        return (int(word), False) if 0 < int(word) < 200 else None
    if word in _FUZZY_WORDS:
        return _FUZZY_WORDS[word], True
    value = _NUMBER_WORDS.get(word)
    return None if value is None else (value, False)


def _direction(word: str) -> int:
    """-1 for last/previous/this past, +1 for next/coming, 0 for this."""
    word = " ".join(word.lower().split())
    if word in ("last", "previous", "this past"):
        return -1
    if word in ("next", "coming", "this coming"):
        return 1
    return 0


def _nearest_year(ref: date, month: int, day: int = 1) -> int | None:
    """The year that puts ``month``/``day`` nearest to ``ref`` (a tie goes to the past)."""
    best: tuple[int, int] | None = None
    for year in (ref.year - 1, ref.year, ref.year + 1):
        try:
            distance = abs((date(year, month, day) - ref).days)
        except ValueError:
            continue
        if best is None or distance < best[0]:
            best = (distance, year)
    return None if best is None else best[1]


def _month_number(word: str) -> int:
    return _MONTH_NUMBER[word.lower().rstrip(".")[: 4 if word.lower().startswith("sept") else 3]]


# Handlers, one per kind of expression.


def _h_relative_day(m: re.Match[str], ref: date) -> _Resolved:
    word = m.group(0).lower()
    if "before yesterday" in word:
        return _day(ref - timedelta(days=2))
    if "after tomorrow" in word:
        return _day(ref + timedelta(days=2))
    if "yesterday" in word or "last night" in word:
        return _day(ref - timedelta(days=1))
    if "tomorrow" in word:
        return _day(ref + timedelta(days=1))
    return _day(ref)


def _h_relative_period(m: re.Match[str], ref: date) -> _Resolved:
    n, unit = _direction(m.group("dir")), m.group("unit").lower()
    if unit == "weekend":
        monday = ref - timedelta(days=ref.weekday())
        if n < 0:
            return _weekend(monday - timedelta(days=2))
        if n > 0 and ref.weekday() >= 5:
            return _weekend(monday + timedelta(days=12))
        return _weekend(monday + timedelta(days=5))
    return _shift(ref, unit, n)


def _h_ago(m: re.Match[str], ref: date) -> _Resolved | None:
    count = _count(m.group("n"))
    if count is None:
        return None
    n, fuzzy = count
    sign = -1 if m.groupdict().get("dir") else 1  # "in N days" has no "ago"
    resolved = _shift(ref, m.group("unit").lower(), sign * n)
    return _widen(resolved) if fuzzy else resolved


def _h_weekday(m: re.Match[str], ref: date) -> _Resolved:
    wanted, n = WEEKDAYS.index(m.group("wd").lower()), _direction(m.group("dir"))
    if n < 0:
        return _day(ref - timedelta(days=(ref.weekday() - wanted) % 7 or 7))
    if n > 0:
        return _day(ref + timedelta(days=(wanted - ref.weekday()) % 7 or 7))
    return _day(ref + timedelta(days=wanted - ref.weekday()))


def _h_month_day(m: re.Match[str], ref: date) -> _Resolved | None:
    if m.group("month") == "may":  # lower-case "may 5" is the verb far more often than the date
        return None
    month, day = _month_number(m.group("month")), int(m.group("day"))
    year = int(m.group("year")) if m.group("year") else _nearest_year(ref, month, day)
    try:
        return None if year is None else _day(date(year, month, day))
    except ValueError:
        return None


def _h_iso(m: re.Match[str], ref: date) -> _Resolved | None:
    try:
        return _day(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    except ValueError:
        return None


def _h_month_year(m: re.Match[str], ref: date) -> _Resolved:
    return _month(int(m.group("year")), _month_number(m.group("month")))


def _h_bare_month(m: re.Match[str], ref: date) -> _Resolved | None:
    month, n = _month_number(m.group("month")), _direction(m.group("dir") or "")
    word = (m.group("dir") or "").lower()
    if n < 0:
        return _month(ref.year if month < ref.month else ref.year - 1, month)
    if n > 0:
        return _month(ref.year if month > ref.month else ref.year + 1, month)
    if word == "this":
        return _month(ref.year, month)
    year = _nearest_year(ref, month, 15)
    return None if year is None else _month(year, month)


def _h_year(m: re.Match[str], ref: date) -> _Resolved:
    return _year(int(m.group("year")))


def _h_season(m: re.Match[str], ref: date) -> _Resolved:
    season = m.group("season").lower()
    first, n = _SEASON_MONTH[season], _direction(m.group("dir"))
    starts = [date(year, first, 1) for year in range(ref.year - 2, ref.year + 2)]
    if n < 0:  # the latest season that has ended
        start = max(s for s in starts if _month(s.year, s.month + 3)[0] <= ref)
    elif n > 0:  # the first that has not begun
        start = min(s for s in starts if s > ref)
    else:
        start = min(starts, key=lambda s: abs((s - ref).days))
    year = f"{start.year}-{(start.year + 1) % 100:02d}" if season == "winter" else str(start.year)
    return start, "year", f"{season} {year}"


_MONTH = (
    r"(?P<month>january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
)
_MONTH_FULL = r"(?P<month>January|February|March|April|May|June|July|August|September|October|November|December)"
_COUNT = (
    r"(?P<n>\d{1,3}|a\s+couple(?:\s+of)?|couple(?:\s+of)?|a\s+few|few|several|an?|one|two|three|four|five|six"
    r"|seven|eight|nine|ten|eleven|twelve)"
)
_UNIT = r"(?P<unit>day|week|month|year)s?"
_DIR = r"(?P<dir>last|previous|next|this\s+past|this\s+coming|coming|this)"
_YEAR = r"(?P<year>(?:19|20)\d{2})"
_NOT_A_YEAR = r"(?:%|people|steps|miles|dollars|times)"  # "in 2000 steps" counts, it does not date
_TIME_OF_DAY = r"(?:\s+(?:morning|afternoon|evening|night))?"
_I = re.IGNORECASE | re.ASCII  # ASCII: "ſ" must not match "s", nor "İ" match "i"

# Overlapping matches are settled longest first, so "7 May 2023" beats "May 2023" and "in May".
_RULES: tuple[tuple[re.Pattern[str], _Handler], ...] = (
    (
        re.compile(
            r"\b(?:the\s+)?day\s+(?:before\s+yesterday|after\s+tomorrow)\b|\b(?:earlier\s+)?today\b|\btonight\b"
            rf"|\bthis\s+(?:morning|afternoon|evening)\b|\byesterday{_TIME_OF_DAY}\b|\blast\s+night\b"
            rf"|\btomorrow{_TIME_OF_DAY}\b",
            _I,
        ),
        _h_relative_day,
    ),
    (re.compile(rf"\b{_DIR}\s+(?P<unit>week|month|year|weekend)\b", _I), _h_relative_period),
    (re.compile(rf"\b{_COUNT}\s+{_UNIT}\s+(?P<dir>ago)\b", _I), _h_ago),
    (re.compile(rf"\bin\s+{_COUNT}\s+{_UNIT}\b", _I), _h_ago),
    (re.compile(rf"\b{_DIR}\s+(?P<wd>{'|'.join(WEEKDAYS)})\b", _I), _h_weekday),
    (re.compile(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+{_YEAR}\b)?", _I), _h_month_day),
    (
        re.compile(rf"\b(?:the\s+)?(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b", _I),
        _h_month_day,
    ),
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), _h_iso),
    (re.compile(rf"\b{_MONTH}\s+(?:of\s+)?{_YEAR}\b", _I), _h_month_year),
    # A month name alone is only a date after a preposition or last/next ("May" is also a verb).
    (
        re.compile(
            r"\b(?P<dir>[Ii]n|[Dd]uring|[Ss]ince|[Ll]ast|[Nn]ext|[Tt]his|[Ee]arly|[Ll]ate|[Mm]id-?|[Uu]ntil)"
            rf"\s+(?:(?:early|late|mid-?)\s*)?{_MONTH_FULL}\b"
        ),
        _h_bare_month,
    ),
    (re.compile(rf"\b(?:[Ii]n|[Ss]ince|[Dd]uring|[Uu]ntil|[Ff]rom)\s+{_YEAR}\b(?!\s*{_NOT_A_YEAR})"), _h_year),
    (re.compile(rf"\b{_DIR}\s+(?P<season>spring|summer|fall|autumn|winter)\b", _I), _h_season),
)
_PREPOSITION = re.compile(r"\b(?:(?:back|sometime)(?:\s+in)?|ever\s+since|since|on|in|during)\s+$", _I)
_CUE = re.compile(
    r"\d|day|night|morning|afternoon|evening|tomorrow|week|month|year|ago|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov"
    r"|dec|spring|summer"
    r"|fall|autumn|winter",
    _I,
)


def _reference_day(reference: datetime) -> date:
    if reference.tzinfo is not None:
        reference = reference.astimezone(UTC)
    return reference.date()


def find_dates(text: str, reference: datetime) -> list[DateMention]:
    """Every date expression in ``text``, in order, resolved against ``reference`` (when it was said)."""
    if not _CUE.search(text):  # most sentences carry no date; skip the rules for them
        return []
    ref = _reference_day(reference)
    found: list[tuple[int, int, _Resolved]] = []
    for pattern, handler in _RULES:
        for match in pattern.finditer(text):
            resolved = handler(match, ref)
            if resolved is not None:
                found.append((match.start(), match.end(), resolved))
    found.sort(key=lambda item: (item[0] - item[1], item[0]))
    taken: list[tuple[int, int, _Resolved]] = []
    for start, end, resolved in found:
        if all(end <= s or start >= e for s, e, _ in taken):
            taken.append((start, end, resolved))
    return [_mention(text, start, end, resolved) for start, end, resolved in sorted(taken, key=lambda t: t[0])]


def _mention(text: str, start: int, end: int, resolved: _Resolved) -> DateMention:
    before = _PREPOSITION.search(text, max(0, start - 16), start)
    if before is not None:
        start = before.start()
    day, granularity, label = resolved
    since = "since" in text[start:end].lower().split()[0:2]
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return DateMention(moment, granularity, (start, end), label, since)


def most_specific(mentions: list[DateMention]) -> DateMention | None:
    """The finest-grained of ``mentions`` (the first among equals), or None."""
    return min(mentions, key=lambda m: _RANK[m.granularity]) if mentions else None


def resolve_date(text: str, reference: datetime) -> DateMention | None:
    """The most specific date expression in ``text`` (the first among equals), or None."""
    return most_specific(find_dates(text, reference))

"""Time expressions in a query, resolved to a window of event time.

"What did Alice say on October 13, 2023?" is about what was said that day: hybrid search lifts the hits
whose ``occurred_at`` falls in the window the query names (``weights.time``). Absolute dates (``2023-10-13``,
``October 13, 2023``, ``13 Oct 2023``, ``October 2023``, ``2023``) and a few relative ones (``today``,
``yesterday``, ``last week``, ``last month``, ``last year``, ``last May``) are understood, English only,
relative ones against the time of the search. Windows are whole UTC days, months or years; the first
expression found counts. Anything else (``the week before the trip``) is left to the retrievers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
# Full names, and three-letter abbreviations with an optional dot ("sept" too); "may" is only a month
# next to a day or a year (or after "last"), so the verb is never read as one.
_MONTH = r"(?P<{0}>(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?)"
_DAY = r"(?P<{0}>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<{0}>(?:19|20)\d\d)"
_PATTERNS = [
    ("iso", rf"\b{_YEAR.format('y')}-(?P<m>[01]\d)-(?P<d>[0-3]\d)\b"),
    ("mdy", rf"\b{_MONTH.format('mon')}\s+{_DAY.format('d')},?\s+{_YEAR.format('y')}\b"),
    ("dmy", rf"\b{_DAY.format('d')}\s+(?:of\s+)?{_MONTH.format('mon')},?\s+{_YEAR.format('y')}\b"),
    ("my", rf"\b{_MONTH.format('mon')},?\s+{_YEAR.format('y')}\b"),
    ("last_month_named", rf"\blast\s+{_MONTH.format('mon')}(?!\w)"),
    ("relative", r"\b(?P<rel>today|yesterday|last\s+(?:week|month|year))\b"),
    ("y", rf"\b(?:in|during|of|since|by)\s+{_YEAR.format('y')}\b"),
]
_COMPILED = [(kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _PATTERNS]


def window(query: str, now: datetime) -> tuple[datetime, datetime] | None:
    """The [start, end) of event time the query names, or None when it names none (or an impossible date).
    The expression that starts first counts; at the same place, the most precise one."""
    found = [
        (match.start(), order, kind, match)
        for order, (kind, pattern) in enumerate(_COMPILED)
        for match in pattern.finditer(query)
    ]
    for _, _, kind, match in sorted(found, key=lambda f: f[:2]):
        resolved = _resolve(kind, {k: v for k, v in match.groupdict().items() if v is not None}, now)
        if resolved is not None:
            return resolved
    return None


def _resolve(kind: str, groups: dict[str, str], now: datetime) -> tuple[datetime, datetime] | None:
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        if kind == "relative":
            phrase = " ".join(groups["rel"].lower().split())
            return _relative(phrase, today)
        if kind == "last_month_named":
            month = _month(groups["mon"])
            if month is None:
                return None
            year = today.year if month < today.month else today.year - 1
            return _month_window(year, month)
        year = int(groups["y"])
        if kind == "y":
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        month = int(groups["m"]) if kind == "iso" else _month(groups["mon"])
        if month is None:
            return None
        if kind == "my":
            return _month_window(year, month)
        start = datetime(year, month, int(groups["d"]), tzinfo=UTC)
        return start, start + timedelta(days=1)
    except ValueError:  # "February 30, 2023"
        return None


def _month(word: str) -> int | None:
    word = word.lower().rstrip(".")
    for number, name in enumerate(_MONTHS, start=1):
        if name.startswith(word[:3]) and (len(word) <= 4 or name == word):
            return number
    return None


def _month_window(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _relative(phrase: str, today: datetime) -> tuple[datetime, datetime]:
    if phrase == "today":
        return today, today + timedelta(days=1)
    if phrase == "yesterday":
        return today - timedelta(days=1), today
    if phrase == "last week":  # the seven days before today's week began (weeks start on Monday)
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday
    if phrase == "last month":
        year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
        return _month_window(year, month)
    return datetime(today.year - 1, 1, 1, tzinfo=UTC), datetime(today.year, 1, 1, tzinfo=UTC)

"""Built statements kept for reuse while their conditions stay the same.

A search builds the same few statements for every query of one scope (a user's messages, say): only the
query's text, its vector and the number of rows wanted change. Building such a statement as SQLAlchemy
constructs costs 1-2 ms of Python each time (the BM25 keyword statement is a dozen CTEs and subqueries),
several milliseconds per search. :class:`Statements` keeps what was built and hands it out again.

What makes that safe is the key. A statement is kept under its *shape* (the caller's own description:
which retriever, which path, which fixed weights) and its **conditions as SQL**: their SQLAlchemy cache
key (the structure SQLAlchemy itself compiles by, every table, column, operator and literal text) and
every value they bind, compared by type and value. Two requests share a statement only when their
conditions are the same SQL with the same values, so a statement built for one scope (an organization, a
user, a key's bindings and grants) is never reused for another. What changes per query is bound when the
statement is run (``bindparam`` without a value, given to ``execute``). Conditions that SQLAlchemy cannot
key, or whose values cannot be compared, are built anew every time.

Two things the key does not hold, by design. What the statement builder reads from the runtime (the
search language, the model and its dimensions, the exact-scan limit) is fixed for a runtime's life, and
the cache is one per runtime (``Runtime.statements``), never shared between runtimes. And the values a
kept statement binds are the first request's own objects (a filter's list of tags, say): nothing may
change them in place after the statement is built.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime, time
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_

from engramdb import metrics

T = TypeVar("T")
# Statements kept per runtime; the least recently used goes first. One kept statement, with the cache key
# SQLAlchemy stores on it, takes about 100 KB: 256 of them (64 scopes of a messages search) about 25 MB.
KEPT = 256


class _Unkeyable(Exception):
    """A bound value that cannot be compared safely (the statement is built anew)."""


def _frozen(value: Any) -> Hashable:
    """A bound value as something hashable that differs whenever the value binds differently: tagged with
    its type, so 1, 1.0 and True (equal in Python, not as JSON or SQL) stay apart; a datetime or time by
    its ISO text, offset included (two readings of one wall-clock time in a time zone's repeated hour are
    equal in Python and an hour apart in SQL)."""
    if isinstance(value, datetime | time):
        return (type(value), value.isoformat())
    if isinstance(value, list | tuple):
        return (type(value), tuple(_frozen(v) for v in value))
    if isinstance(value, dict):
        return (dict, frozenset((_frozen(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return (type(value), frozenset(_frozen(v) for v in value))
    try:
        hash(value)
    except TypeError as exc:
        raise _Unkeyable from exc
    return (type(value), value)


def conditions_key(conditions: Sequence[ColumnElement[bool]]) -> Hashable | None:
    """The conditions' structure and bound values, or None when they cannot be keyed."""
    if not conditions:
        return ()
    key = and_(*conditions)._generate_cache_key()
    if key is None or key.params:
        return None
    try:
        values = tuple(_frozen(bind.effective_value) for bind in key.bindparams)
    except _Unkeyable:
        return None
    return (key.key, values)


class Statements:
    """Statements kept by shape and conditions (see the module's docstring)."""

    def __init__(self, *, size: int = KEPT) -> None:
        self._size = size
        self._kept: OrderedDict[Hashable, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, shape: Hashable, conditions: Sequence[ColumnElement[bool]], build: Callable[[], T]) -> T:
        """The statement kept for ``shape`` under ``conditions``, else ``build()`` (kept for next time)."""
        conds = conditions_key(conditions)
        if conds is None:
            metrics.SEARCH_STATEMENTS.labels("unkeyable").inc()
            return build()
        key = (shape, conds)
        found = self._kept.get(key)
        if found is not None:
            metrics.SEARCH_STATEMENTS.labels("kept").inc()
            self._kept.move_to_end(key)
            kept: T = found
            return kept
        metrics.SEARCH_STATEMENTS.labels("built").inc()
        built = build()
        self._kept[key] = built
        if len(self._kept) > self._size:
            self._kept.popitem(last=False)
        return built

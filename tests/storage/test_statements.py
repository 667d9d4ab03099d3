"""Built statements are shared only by conditions that are the same SQL with the same values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, literal

from engramdb.storage import tables as t
from engramdb.storage.filters import content_filters
from engramdb.storage.statements import Statements, conditions_key

m = t.message


def _conds(org: uuid.UUID, user: uuid.UUID | None = None, **filters: object) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [m.c.org_id == org]
    if user is not None:
        conds.append(m.c.user_id == user)
    return conds + content_filters(m, **filters)  # type: ignore[arg-type]


def test_the_same_conditions_give_the_same_key_and_any_other_value_another() -> None:
    org, alice, bob = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert conditions_key(_conds(org, alice)) == conditions_key(_conds(org, alice))  # built twice
    keys = [
        conditions_key(_conds(org, alice)),
        conditions_key(_conds(org, bob)),  # another user
        conditions_key(_conds(uuid.uuid4(), alice)),  # another organization
        conditions_key(_conds(org)),  # no user at all
        conditions_key(_conds(org, alice, tags_any=["a"])),
        conditions_key(_conds(org, alice, tags_any=["a", "b"])),  # a longer list
        conditions_key(_conds(org, alice, tags_all=["a"])),  # the same value in another filter
        conditions_key(_conds(org, alice, created_after=datetime(2026, 1, 1, tzinfo=UTC))),
        conditions_key(_conds(org, alice, created_after=datetime(2026, 1, 2, tzinfo=UTC))),
    ]
    assert None not in keys and len(set(keys)) == len(keys)


def test_values_equal_in_python_but_not_in_sql_stay_apart() -> None:
    """1, 1.0 and True are equal (and hash alike) in Python; as JSON they are three different values."""
    org = uuid.uuid4()
    keys = {conditions_key(_conds(org, metadata={"level": value})) for value in (1, 1.0, True)}
    assert len(keys) == 3
    nested = {conditions_key(_conds(org, metadata={"a": {"b": [1, 2]}})) for _ in range(2)}
    assert len(nested) == 1


def test_conditions_that_cannot_be_compared_are_built_every_time() -> None:
    class Opaque:
        __hash__ = None  # type: ignore[assignment]

    conds = [m.c.org_id == uuid.uuid4(), m.c.name == literal(Opaque(), String)]
    assert conditions_key(conds) is None
    built: list[int] = []
    kept = Statements()
    for _ in range(2):
        kept.get("shape", conds, lambda: built.append(1) or len(built))
    assert built == [1, 1] and len(kept) == 0


def test_statements_are_kept_by_shape_and_conditions_and_the_least_recently_used_goes_first() -> None:
    org = uuid.uuid4()
    kept = Statements(size=2)
    made: list[str] = []

    def build(label: str) -> str:
        made.append(label)
        return label

    assert kept.get("keyword", _conds(org), lambda: build("a")) == "a"
    assert kept.get("keyword", _conds(org), lambda: build("again")) == "a"  # the same: kept
    assert kept.get("vector", _conds(org), lambda: build("b")) == "b"  # another shape
    assert kept.get("keyword", _conds(org), lambda: build("again")) == "a"  # "a" used last, "b" least
    assert kept.get("keyword", _conds(org, uuid.uuid4()), lambda: build("c")) == "c"  # other conditions
    assert made == ["a", "b", "c"] and len(kept) == 2
    # "b" had been used least recently: it went when "c" came; "a" stayed.
    assert kept.get("keyword", _conds(org), lambda: build("a2")) == "a"
    assert kept.get("vector", _conds(org), lambda: build("b2")) == "b2"


def test_one_wall_clock_time_read_twice_in_a_repeated_hour_is_two_values() -> None:
    """01:30 on the night clocks go back happens twice in New York, an hour apart: equal in Python, two
    instants in SQL."""
    first = datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert first == second
    assert conditions_key([m.c.created_at >= first]) != conditions_key([m.c.created_at >= second])
    # A key True is written "true" in JSON, a key "True" as itself.
    org = uuid.uuid4()
    as_text = conditions_key(_conds(org, metadata={"True": 1}))
    assert as_text != conditions_key(_conds(org, metadata={True: 1}))
    assert as_text == conditions_key(_conds(org, metadata={"True": 1}))

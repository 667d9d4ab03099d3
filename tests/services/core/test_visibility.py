"""How grants become SQL (``core/visibility.py``), without a database: what a query's WHERE clause says."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import and_
from sqlalchemy.dialects import postgresql

from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller, Grant, Sharing


def _sql(conds: list[Any]) -> str:
    return str(and_(*conds).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


USER = Caller(org_id=uuid.uuid4(), scopes=frozenset({"read"}), user_id=uuid.uuid4())


def test_without_a_grant_that_reaches_a_table_its_conditions_are_the_bindings_alone() -> None:
    bare = {name: _sql(rule(USER)) for name, rule in visibility.RULES.items()}
    on_facts = replace(USER, sharing=Sharing(grants=(Grant(uuid.uuid4(), "read", "facts"),)))
    for name, rule in visibility.RULES.items():
        if name not in ("fact", "entity"):
            assert _sql(rule(on_facts)) == bare[name], name
    assert _sql(visibility.facts(on_facts)) != bare["fact"]
    unbound = replace(USER, user_id=None, sharing=on_facts.sharing)
    assert _sql(visibility.facts(unbound)) == _sql(visibility.facts(replace(USER, user_id=None)))


def _grants(count: int, *, unlike: bool) -> tuple[Grant, ...]:
    return tuple(
        Grant(uuid.uuid4(), "read", "memories", owner_user_id=uuid.uuid4(), tags=(f"t{i}",) if unlike or i % 2 else ())
        for i in range(count)
    )


def test_however_many_grants_the_sql_is_the_same_size() -> None:
    """A thousand grants (on a thousand users, each with tags of its own) are array parameters of the same
    statement that three hundred are: ``user_id = ANY(…)``, and a semi-join with the grants' unnested rows
    (under a hundred owners, the semi-join also names them plainly, for the index)."""
    parameterised = {
        (n, unlike): str(
            and_(*visibility.memories(replace(USER, sharing=Sharing(grants=_grants(n, unlike=unlike))))).compile(
                dialect=postgresql.dialect()
            )
        )
        for n in (300, 1000)
        for unlike in (False, True)
    }
    assert parameterised[(300, False)] == parameterised[(1000, False)]
    assert parameterised[(300, True)] == parameterised[(1000, True)]
    assert "= ANY (" in parameterised[(300, False)] and "unnest(" in parameterised[(300, False)]
    grants = _grants(1000, unlike=True)
    inline = _sql(visibility.memories(replace(USER, sharing=Sharing(grants=grants))))
    assert inline.count("unnest(") == 1 and all(str(g.owner_user_id) in inline for g in grants)


def test_read_grants_are_left_out_of_writes_and_bad_narrowings_fail_closed() -> None:
    read = Grant(uuid.uuid4(), "read", "memories", owner_user_id=uuid.uuid4())
    caller = replace(USER, sharing=Sharing(grants=(read,)))
    assert _sql(visibility.memories(caller, write=True)) == _sql(visibility.memories(USER))
    # A grant on memories narrowed by a repository (the API refuses it) matches nothing rather than all.
    odd = Grant(uuid.uuid4(), "read", "memories", repository_id=uuid.uuid4())
    assert _sql(visibility.memories(replace(USER, sharing=Sharing(grants=(odd,))))) == _sql(visibility.memories(USER))


def test_strict_teams_and_apps_are_out_of_every_grants_reach() -> None:
    team, app = uuid.uuid4(), uuid.uuid4()
    grants = (Grant(uuid.uuid4(), "read", "sessions"),)
    sql = _sql(visibility.sessions(replace(USER, sharing=Sharing(grants, strict_teams=(team,), strict_apps=(app,)))))
    assert f"session.team_id NOT IN ('{team}')" in sql and f"session.app_id NOT IN ('{app}')" in sql

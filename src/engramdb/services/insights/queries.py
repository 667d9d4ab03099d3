"""The fixed set of aggregate queries a session may name: each counts one participant's rows per bucket and
returns counts only, never rows. Every query is written for one organization (and, for the queries over
memories, optionally one team), and runs where row-level security confines it to that organization."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select

from engramdb.storage import tables as t

_LIVE_MEMORY = ("active", "paused")  # archived and deleted memories are not counted


def _memories(org_id: uuid.UUID, team_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
    m = t.memory
    conds = [m.c.org_id == org_id, m.c.state.in_(_LIVE_MEMORY), m.c.deleted_at.is_(None)]
    if team_id is not None:
        conds.append(m.c.team_id == team_id)
    return conds


def counts(query: str, org_id: uuid.UUID, team_id: uuid.UUID | None, buckets: Sequence[str]) -> Select[Any]:
    """``(bucket, n)`` rows: how many of the participant's rows fall in each named bucket."""
    wanted = list(buckets)
    if query == "memory_types":
        m = t.memory
        where = [*_memories(org_id, team_id), m.c.memory_type.in_(wanted)]
        return select(m.c.memory_type.label("bucket"), func.count().label("n")).where(*where).group_by(m.c.memory_type)
    if query == "memory_categories":
        m = t.memory
        each = select(func.unnest(m.c.categories).label("bucket")).where(*_memories(org_id, team_id)).subquery()
        return select(each.c.bucket, func.count().label("n")).where(each.c.bucket.in_(wanted)).group_by(each.c.bucket)
    if query == "fact_predicates":
        f = t.fact
        current = [
            f.c.org_id == org_id,
            f.c.superseded_at.is_(None),
            or_(f.c.valid_until.is_(None), f.c.valid_until > func.now()),
            f.c.predicate.in_(wanted),
        ]
        return select(f.c.predicate.label("bucket"), func.count().label("n")).where(*current).group_by(f.c.predicate)
    if query == "entity_types":
        e = t.entity
        where = [e.c.org_id == org_id, e.c.merged_into.is_(None), e.c.entity_type.in_(wanted)]
        return select(e.c.entity_type.label("bucket"), func.count().label("n")).where(*where).group_by(e.c.entity_type)
    if query == "task_outcomes":
        k = t.task
        where = [k.c.org_id == org_id, k.c.state.in_(wanted)]
        return select(k.c.state.label("bucket"), func.count().label("n")).where(*where).group_by(k.c.state)
    raise ValueError(f"unknown insight query {query!r}")

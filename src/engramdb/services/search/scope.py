"""Which rows a search's retrievers see: the conditions of one type's scope (the caller's visibility, the
request's owner filters and content filters), pushed into every retriever's SQL (``retrievers.py``)."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, Table

from engramdb.schemas.search import SearchRequest
from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.storage.filters import content_filters, in_unexpired_session, unexpired


def owned(table: Table, req: SearchRequest, user_id: uuid.UUID | None) -> list[ColumnElement[bool]]:
    """The request's owner filters (user, agent, session, app) on ``table``, for those it names."""
    named = (("user_id", user_id), ("agent_id", req.agent_id), ("session_id", req.session_id), ("app_id", req.app_id))
    return [table.c[column] == value for column, value in named if value is not None]


def conditions(
    kind: str, table: Table, caller: Caller, req: SearchRequest, user_id: uuid.UUID | None
) -> list[ColumnElement[bool]]:
    f = req.filters
    conds = visibility.RULES[kind](caller) + owned(table, req, user_id)
    message = kind == "message"
    conds += content_filters(
        table,
        tags_any=f.tags_any,
        tags_all=f.tags_all,
        metadata=f.metadata,
        created_after=f.created_after,
        created_before=f.created_before,
        categories=None if message else f.categories,
        occurred_after=f.occurred_after if message else None,
        occurred_before=f.occurred_before if message else None,
    )
    if message:
        conds.append(in_unexpired_session(table))
        if f.role:
            conds.append(table.c.role.in_(f.role))
    else:
        conds += [table.c.state.in_(f.state), unexpired(table)]
        if f.memory_types:
            conds.append(table.c.memory_type.in_(f.memory_types))
    return conds

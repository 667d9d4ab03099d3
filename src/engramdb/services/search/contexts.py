"""Offloaded contexts in ``/v1/search`` (``types: ["contexts"]``).

A context is one row with one vector (its representative text's) and one full-text index (that text and
the start of the content), so it is retrieved by the same vector and BM25 retrievers as messages and
memories (``retrievers.py``) and fused with every other type by the same reciprocal rank fusion. Expired
contexts are left out, as an expired memory is. A hit's ``content`` is the representative text; the
content itself is restored by id (``GET /v1/contexts/{id}/content``).

Scoped by ``user_id``, ``agent_id``, ``session_id`` and ``app_id``; of the filters, ``tags_any``/``tags_all``,
``metadata``, ``created_after``/``created_before`` and ``content_types`` apply.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.schemas.search import SearchRequest
from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.services.search.scope import owned
from engramdb.storage import tables as t
from engramdb.storage.filters import content_filters, unexpired

KIND = "context"  # the result type (the request's type is "contexts")
RANKING = ("id", "session_id", "created_at")  # what a candidate carries into fusion
RESULT_FIELDS = ("task_id", "filename", "original_bytes")  # set on context hits only (title, content_type: shared)

oc = t.offloaded_context


def scopes(
    caller: Caller, req: SearchRequest, user_id: uuid.UUID | None
) -> list[tuple[str, Table, list[ColumnElement[bool]]]]:
    """The context retriever's conditions, when contexts are asked for."""
    if "contexts" not in req.types:
        return []
    conds = visibility.contexts(caller) + owned(oc, req, user_id)
    f = req.filters
    conds += content_filters(
        oc,
        tags_any=f.tags_any,
        tags_all=f.tags_all,
        metadata=f.metadata,
        created_after=f.created_after,
        created_before=f.created_before,
    )
    if f.content_types:
        conds.append(oc.c.content_type.in_(f.content_types))
    conds.append(unexpired(oc))
    return [(KIND, oc, conds)]


async def full_rows(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """The winners, shaped as search results (``content`` is the representative text)."""
    names = ("id", "user_id", "session_id", "task_id", "title", "filename", "content_type", "original_bytes")
    query = select(
        *(oc.c[name] for name in names), oc.c.summary.label("content"), oc.c.metadata, oc.c.tags, oc.c.created_at
    ).where(oc.c.id.in_(ids))
    return {r["id"]: dict(r) for r in (await conn.execute(query)).mappings().all()}

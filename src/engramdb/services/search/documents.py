"""Chunks and documents in ``/v1/search``.

Chunks are retrieved by the same vector retriever as messages and memories (an exact scan when the
filtered chunks are few, the HNSW index of ``chunk`` when many) and the same BM25 keyword retriever, both
in services/search/hybrid.py, and fused with every other type by one reciprocal rank fusion.

Documents have no index of their own: in each retriever's list a document takes the place of its best
chunk there (its other chunks are dropped and the documents ranked again 1, 2, 3 …), and a document hit
cites the chunk whose fused score is best.

Chunks carry their document's owner and repository, so the scope (the key's binding, the user, agent and
app asked for, the repository filter) is tested on the chunk itself; the filters on what only the
document holds (path, content type, tags, metadata, creation time) go through it:
``document_id IN (SELECT id FROM document WHERE …)``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.providers.documents import citation
from engramdb.schemas.search import SearchRequest
from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.storage import tables as t
from engramdb.storage.filters import content_filters

KINDS = {"chunks": "chunk", "documents": "document"}  # request type -> result type
RANKING = ("id", "document_id", "created_at")  # what a chunk candidate carries into fusion
RESULT_FIELDS = (
    "document_id",
    "repository_id",
    "path",
    "title",
    "content_type",
    "citation",
    "heading_path",
    "start_line",
    "end_line",
    "page",
)

c, d = t.chunk, t.document
# A retriever's list: the result type, its rows best first, and the vector method (None: keyword).
RankedList = tuple[str, list[dict[str, Any]], str | None]


def scopes(
    caller: Caller, req: SearchRequest, user_id: uuid.UUID | None
) -> list[tuple[str, Table, list[ColumnElement[bool]]]]:
    """The chunk retriever, when chunks or documents are asked for (one retrieval serves both).

    Scoped by ``user_id``, ``agent_id`` and ``app_id`` (``session_id`` does not apply). Of the filters,
    ``repository_id``, ``path_prefix``, ``content_types``, ``tags_any``/``tags_all``, ``metadata`` and
    ``created_after``/``created_before`` apply, all but the first through the document; the rest are for
    messages or memories only."""
    if not any(name in KINDS for name in req.types):
        return []
    conds = visibility.chunks(caller)  # no team on documents: bound keys see their users' (fail closed)
    for column, value in (("user_id", user_id), ("agent_id", req.agent_id), ("app_id", req.app_id)):
        if value is not None:
            conds.append(c.c[column] == value)
    f = req.filters
    if f.repository_id is not None:
        wanted = [f.repository_id] if isinstance(f.repository_id, uuid.UUID) else f.repository_id
        conds.append(c.c.repository_id.in_(wanted))
    through = content_filters(
        d,
        tags_any=f.tags_any,
        tags_all=f.tags_all,
        metadata=f.metadata,
        created_after=f.created_after,
        created_before=f.created_before,
    )
    if f.path_prefix is not None:
        through.append(d.c.path.startswith(f.path_prefix, autoescape=True))
    if f.content_types:
        through.append(d.c.content_type.in_(f.content_types))
    if through:
        conds.append(c.c.document_id.in_(select(d.c.id).where(d.c.org_id == caller.org_id, *through)))
    return [("chunk", c, conds)]


def per_type(req: SearchRequest, lists: Sequence[RankedList]) -> Iterator[RankedList]:
    """Each retriever's list as the requested result types want it: a chunk list becomes a chunk list,
    a document list, or both; the other types' lists pass through unchanged, in order."""
    documents = "documents" in req.types
    best = _best_chunks(req, [(rows, method) for kind, rows, method in lists if kind == "chunk"]) if documents else {}
    for kind, rows, method in lists:
        if kind != "chunk":
            yield kind, rows, method
            continue
        if "chunks" in req.types:
            yield kind, rows, method
        if documents:
            yield "document", _documents(rows, best), method


def _best_chunks(
    req: SearchRequest, lists: Iterable[tuple[list[dict[str, Any]], str | None]]
) -> dict[uuid.UUID, uuid.UUID]:
    """Each document's chunk with the best reciprocal rank fusion score (document id -> chunk id)."""
    w = req.weights
    fused: dict[uuid.UUID, float] = defaultdict(float)
    document_of: dict[uuid.UUID, uuid.UUID] = {}
    for rows, method in lists:
        weight = w.keyword if method is None else w.vector
        for rank, row in enumerate(rows, start=1):
            fused[row["id"]] += weight / (req.rrf_k + rank)
            document_of[row["id"]] = row["document_id"]
    best: dict[uuid.UUID, uuid.UUID] = {}
    for chunk_id in sorted(fused, key=lambda k: (-fused[k], str(k))):
        best.setdefault(document_of[chunk_id], chunk_id)
    return best


def _documents(rows: list[dict[str, Any]], best: Mapping[uuid.UUID, uuid.UUID]) -> list[dict[str, Any]]:
    """One row per document, where its best chunk in this list stands, citing its best chunk overall."""
    seen: set[uuid.UUID] = set()
    out = []
    for row in rows:
        document_id = row["document_id"]
        if document_id not in seen:
            seen.add(document_id)
            out.append({**row, "id": document_id, "chunk_id": best[document_id]})
    return out


async def full_rows(conn: AsyncConnection, kind: str, rows: list[dict[str, Any]]) -> dict[uuid.UUID, dict[str, Any]]:
    """The winners of one type, shaped as search results, read with their documents in one query."""
    chunk_of = {row["id"]: row.get("chunk_id", row["id"]) for row in rows}
    query = (
        select(
            *(c.c[name] for name in ("id", "document_id", "repository_id", "user_id", "content", "created_at")),
            *(c.c[name] for name in ("heading_path", "start_line", "end_line", "page")),
            *(d.c[name] for name in ("path", "title", "content_type", "metadata", "tags")),
            d.c.created_at.label("document_created_at"),
        )
        .select_from(c.join(d, (d.c.org_id == c.c.org_id) & (d.c.id == c.c.document_id)))
        .where(c.c.id.in_(list(dict.fromkeys(chunk_of.values()))))
    )
    found = {r["id"]: dict(r) for r in (await conn.execute(query)).mappings().all()}
    out = {}
    for hit_id, chunk_id in chunk_of.items():
        if (row := found.get(chunk_id)) is not None:
            out[hit_id] = _shaped(kind, row)
    return out


@dataclass(frozen=True)
class _Position:
    """Where a chunk sits in its document, as the citation reads it."""

    heading_path: Sequence[str]
    start_line: int
    end_line: int
    page: int | None


def _shaped(kind: str, row: dict[str, Any]) -> dict[str, Any]:
    where = _Position(row["heading_path"], row["start_line"], row["end_line"], row["page"])
    shaped = {**row, "citation": citation(row["path"], row["title"], where)}
    created_at = shaped.pop("document_created_at")
    if kind == "document":
        shaped.update(
            id=row["document_id"], content=row["title"] or row["path"] or row["content"], created_at=created_at
        )
    return shaped

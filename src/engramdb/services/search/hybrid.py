"""Hybrid search over messages and memories, facts and entities (services/search/graph.py), chunks
and documents (services/search/documents.py), and offloaded contexts (services/search/contexts.py).

Each retriever (vector and keyword, per type) returns its top ``candidates`` under every filter, pushed
into SQL; reciprocal rank fusion merges the lists, so a memory and a message compete fairly; recency and
importance then adjust the fused score. ``explain`` returns every component.

The retrievers, and why their top-k stays exact under filters, are in ``retrievers.py``; the fusion and
its factors in ``fusion.py``; the turns reached through links (replies, provenance) in ``links.py``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import metrics
from engramdb.errors import PermissionDenied
from engramdb.schemas.search import ScoreExplanation, SearchRequest, SearchResponse, SearchResult
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.memory import decay
from engramdb.services.search import contexts as search_contexts
from engramdb.services.search import documents as search_docs
from engramdb.services.search import fusion, links, retrievers
from engramdb.services.search import graph as search_graph
from engramdb.services.search import scope as search_scope
from engramdb.services.tenancy.directory import find_external_user
from engramdb.storage import tables as t

_TABLES = {"messages": ("message", t.message), "memories": ("memory", t.memory)}


_embedding_now = 0  # query embeddings this process has asked for and not yet received


def _embedded(_: asyncio.Future[list[list[float]]]) -> None:
    global _embedding_now
    _embedding_now -= 1


async def search(
    rt: Runtime, caller: Caller, req: SearchRequest
) -> tuple[SearchResponse, list[tuple[uuid.UUID, float]]]:
    """The fused top-k, and the (memory id, score) hits for access tracking."""
    caller.require("read")
    n = req.candidates or max(50, 5 * req.top_k)
    # The query is embedded (on the model's thread) while the keyword side runs in the database, unless
    # other queries are waiting for the model: then the vector comes first, so a queue at the model never
    # holds database connections (under load, that emptied the pool and shed searches with 503).
    embedding: asyncio.Future[list[list[float]]] | None = None
    global _embedding_now
    if req.mode != "keyword":
        embedding = asyncio.ensure_future(rt.embedder.embed_batch([req.query], kind="query"))
        _embedding_now += 1
        embedding.add_done_callback(_embedded)
    started = time.perf_counter()
    try:
        if embedding is not None and _embedding_now > 1:
            await asyncio.shield(embedding)
        return await _search(rt, caller, req, n, embedding)
    finally:
        metrics.SEARCH_DURATION.labels(req.mode).observe(time.perf_counter() - started)
        if embedding is not None and not embedding.done():
            embedding.cancel()


async def _search(
    rt: Runtime, caller: Caller, req: SearchRequest, n: int, embedding: asyncio.Future[list[list[float]]] | None
) -> tuple[SearchResponse, list[tuple[uuid.UUID, float]]]:
    async with rt.db.read(caller.org_id) as conn:
        # A bound key is confined by visibility (its sessions, its memories); naming another user is 403.
        user_id = req.user_id
        if req.external_user_id is not None:
            user_id = await find_external_user(conn, caller, req.external_user_id)
            if user_id is None:
                if caller.user_id is not None:  # same answer as for another existing user: no oracle
                    raise PermissionDenied("this API key is bound to another user")
                return SearchResponse(results=[]), []
        if user_id is not None:
            caller.bind("user_id", user_id)
        scopes = [
            (kind, table, search_scope.conditions(kind, table, caller, req, user_id))
            for kind, table in (_TABLES[name] for name in dict.fromkeys(req.types) if name in _TABLES)
        ]
        scopes += search_docs.scopes(caller, req, user_id)
        scopes += search_contexts.scopes(caller, req, user_id)
        messages = next((conds for kind, _, conds in scopes if kind == "message"), None)
        # The memories behind the messages (``_provenance``) need the memory retrievers' lists: the
        # request's own when it searches memories too, else they run beside the others, their keyword side
        # while the query is embedded, but are not results. (Run on a second connection instead, they made
        # sequential searches no faster and concurrent ones slower on two cores.)
        provenance = bool(req.weights.memory) and messages is not None
        only_provenance = provenance and all(kind != "memory" for kind, _, _ in scopes)
        if only_provenance:
            scopes.append(("memory", t.memory, search_scope.conditions("memory", t.memory, caller, req, user_id)))
        graph_scopes = search_graph.scopes(caller, req, user_id)
        lists = await _retrieve(conn, rt, caller, req, user_id, n, embedding, scopes, graph_scopes)
        memory_lists = [rows for kind, rows, _ in lists if kind == "memory"]
        if only_provenance:
            lists = [ranked for ranked in lists if ranked[0] != "memory"]
        hits: dict[tuple[str, uuid.UUID], retrievers.Hit] = {}
        for ranked in search_docs.per_type(req, lists):
            _rank(hits, *ranked)
        if provenance and messages is not None:
            await _provenance(conn, req, n, memory_lists, hits, messages)
        if req.weights.recency:
            await links.said_at(conn, caller.org_id, hits.values())
        linked = await search_graph.graph_links(conn, caller, req, user_id, [(h.kind, h.row) for h in hits.values()])
        half_lives = rt.settings.decay_half_life_days  # the organization's own, where importance counts
        if req.weights.importance and any(hit.kind == "memory" for hit in hits.values()):
            half_lives = await decay.half_lives(conn, caller.org_id, rt.settings)
        scored = fusion.fuse(req, hits, linked, half_lives)
        if req.weights.reply and messages is not None:
            asked = [hit.row for _, hit, _ in scored[:n] if hit.kind == "message"]
            fusion.answers(scored, await links.replies(conn, messages, asked), req.weights.reply)
        if req.weights.length:
            fusion.by_length(scored, req.weights.length * fusion.first_place(req))
        kept = {id(hit) for hit in await retrievers.hydrate(conn, [hit for _, hit, _ in scored[: req.top_k]])}
    return _respond(req, [s for s in scored[: req.top_k] if id(s[1]) in kept])


async def _retrieve(
    conn: AsyncConnection,
    rt: Runtime,
    caller: Caller,
    req: SearchRequest,
    user_id: uuid.UUID | None,
    n: int,
    embedding: asyncio.Future[list[list[float]]] | None,
    scopes: list[tuple[str, Table, list[ColumnElement[bool]]]],
    graph_scopes: list[search_graph.Scope],
) -> list[search_docs.RankedList]:
    """Each retriever's list (keyword, then vector once the query's vector is in), per scope and graph scope."""
    # How many rows each vector retriever would scan decides exact scan or index; a scope seen large
    # recently is not counted again (if it shrank meanwhile, the index path still falls back).
    limit = rt.settings.exact_search_limit
    large = {kind: _scope_key(caller, req, kind, user_id) in rt.large_scopes for kind, _, _ in scopes}
    matching: dict[str, int | None] = {kind: limit + 1 if large[kind] else None for kind in large}
    lists: list[search_docs.RankedList] = []  # each retriever's list, ranked once all are in
    if req.mode != "vector":
        for kind, table, conds in scopes:
            count = embedding is not None and not large[kind]
            rows, found = await retrievers.keyword(conn, rt, kind, table, conds, req.query, n, count)
            matching[kind] = matching[kind] if found is None else found
            lists.append((kind, rows, None))
        for scope in graph_scopes:
            lists.append((scope.kind, await search_graph.keyword(conn, rt, scope, req.query, n), None))
    if embedding is not None:
        (qvec,) = await embedding
        for kind, table, conds in scopes:
            size = matching[kind]
            if size is None:
                size = await conn.scalar(retrievers.count([*conds, retrievers.embedded_with(rt, table)], limit)) or 0
            if size > limit:
                rt.large_scopes.add(_scope_key(caller, req, kind, user_id))
            w = req.weights
            rows, method = await retrievers.vector(
                conn, rt, kind, table, conds, qvec, n, w.neighbor, size, caller.org_id, w.context
            )
            lists.append((kind, rows, method))
        for scope in graph_scopes:
            lists.append((scope.kind, await search_graph.vector(conn, rt, scope, qvec, n), "exact"))
    return lists


async def _provenance(
    conn: AsyncConnection,
    req: SearchRequest,
    n: int,
    memory_lists: list[list[dict[str, Any]]],
    hits: dict[tuple[str, uuid.UUID], retrievers.Hit],
    messages: list[ColumnElement[bool]],
) -> None:
    """One more list of messages for the fusion: the messages that the memories matching the query were
    extracted from, in the memories' order (``memory_rank``). A memory says in a sentence that stands on
    its own what a turn said in context ("Melanie signed up for a pottery class" for "I just signed up for
    a pottery class!"), so it finds turns the query does not match. ``memory_lists``: the memory
    retrievers' lists."""
    fused: dict[uuid.UUID, float] = defaultdict(float)
    memories: dict[uuid.UUID, dict[str, Any]] = {}
    for rows in memory_lists:
        for rank, row in enumerate(rows, start=1):
            fused[row["id"]] += 1 / (req.rrf_k + rank)
            memories[row["id"]] = row
    best = sorted(fused, key=lambda m: (-fused[m], m))[:n]
    known = {key[1] for key in hits if key[0] == "message"}
    ordered, rows = await links.sources(conn, messages, [memories[m] for m in best], known)
    for row in rows:
        hits.setdefault(("message", row["id"]), retrievers.Hit("message", row))
    for rank, message_id in enumerate(ordered[:n], start=1):
        hits["message", message_id].memory_rank = rank


def _rank(
    hits: dict[tuple[str, uuid.UUID], retrievers.Hit], kind: str, rows: list[dict[str, Any]], method: str | None
) -> None:
    """Record each row's place in one retriever's list: a vector list found by ``method``, else keyword."""
    for rank, row in enumerate(rows, start=1):
        hit = hits.setdefault((kind, row["id"]), retrievers.Hit(kind, row))
        if method is None:
            hit.keyword_rank, hit.keyword_score = rank, float(row["rank"])
            continue
        hit.vector_rank, hit.vector_method = rank, method
        hit.vector_similarity = float(row["similarity"])
        near = row.get("neighbor_similarity")
        hit.neighbor_similarity = None if near is None else float(near)


def _scope_key(caller: Caller, req: SearchRequest, kind: str, user_id: uuid.UUID | None) -> tuple[object, ...]:
    """Everything that decides which rows a retriever sees (not the query text)."""
    return (
        kind,
        caller.org_id,
        caller.team_id,
        caller.user_id,
        caller.agent_id,
        user_id,
        req.agent_id,
        req.session_id,
        req.app_id,
        req.filters.model_dump_json(),
    )


def _respond(req: SearchRequest, scored: list[fusion.Scored]) -> tuple[SearchResponse, list[tuple[uuid.UUID, float]]]:
    results = []
    accessed: list[tuple[uuid.UUID, float]] = []
    for final, hit, explanation in scored[: req.top_k]:
        row = hit.row
        results.append(
            SearchResult(
                type=hit.kind,
                id=row["id"],
                content=row["content"],
                score=final,
                session_id=row.get("session_id"),
                user_id=row["user_id"],
                occurred_at=row.get("occurred_at"),
                created_at=row["created_at"],
                metadata=row["metadata"],
                tags=row["tags"],
                name=row.get("name"),
                role=row.get("role"),
                memory_type=row.get("memory_type"),
                importance=row.get("importance"),
                **{field: row.get(field) for field in search_graph.RESULT_FIELDS},
                **{field: row.get(field) for field in search_docs.RESULT_FIELDS},
                **{field: row.get(field) for field in search_contexts.RESULT_FIELDS},
                explanation=ScoreExplanation(**explanation) if req.explain else None,
            )
        )
        if hit.kind == "memory":
            accessed.append((row["id"], final))
    return SearchResponse(results=results), accessed

"""Hybrid search over messages and memories, facts and entities (services/search/graph.py), chunks
and documents (services/search/documents.py), and offloaded contexts (services/search/contexts.py).

Each retriever (vector and keyword, per type) returns its top ``candidates`` under every filter, pushed
into SQL; reciprocal rank fusion merges the lists, so a memory and a message compete fairly; recency and
importance then adjust the fused score. ``explain`` returns every component.

The retrievers, and why their top-k stays exact under filters, are in ``retrievers.py``.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
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
from engramdb.services.search import dates, links, retrievers
from engramdb.services.search import documents as search_docs
from engramdb.services.search import graph as search_graph
from engramdb.services.tenancy.directory import find_external_user
from engramdb.storage import tables as t

# A candidate's fused score, the hit, and the parts of its score (a ScoreExplanation's fields, made into
# one only for the results returned with ``explain``).
Scored = tuple[float, retrievers.Hit, dict[str, Any]]
_SESSION_POOL = 30  # how many of the best fused hits vote for their session
_TABLES = {"messages": ("message", t.message), "memories": ("memory", t.memory)}


def _session_coherence(scored: list[Scored], weight: float) -> None:
    """Messages in the sessions that hold most of the strongest hits rise: a conversation that answers
    the query usually answers it in several turns. Each message's score is scaled by
    ``(1 + weight × share) / (1 + weight)``, where ``share`` is its session's part of the top-30 fused
    score relative to the best session's: messages of the best session keep their score and the others
    sink, so memories (which have no session to vote for) are not pushed down."""
    mass: dict[uuid.UUID, float] = defaultdict(float)
    for final, hit, _ in sorted(scored, key=lambda s: -s[0])[:_SESSION_POOL]:
        if hit.kind == "message":
            mass[hit.row["session_id"]] += final
    if not mass:
        return
    best = max(mass.values())
    for index, (final, hit, explanation) in enumerate(scored):
        if hit.kind != "message":
            continue
        share = mass.get(hit.row["session_id"], 0.0) / best
        explanation["session"] = share
        explanation["final"] = final * (1 + weight * share) / (1 + weight)
        scored[index] = (explanation["final"], hit, explanation)


def _names_in(query: str, name: str) -> bool:
    """Whether the query names this speaker (whole words, any case): questions about a person are mostly
    answered by what that person said."""
    return re.search(rf"(?<!\w){re.escape(name.lower())}(?!\w)", query.lower()) is not None


def _recency(hit: retrievers.Hit, now: datetime, half_life_days: float) -> float:
    """``2^(−age/half-life)``, the age counted from when the hit happened in the world (event time), not
    from when Engram stored it, so an imported history is not all new: a message's ``occurred_at``; a
    memory's ``occurred_at``, else when it was last said (``said_at``); a fact's ``valid_from``, else when
    it was recorded, and 0 once it no longer holds (``valid_until`` passed: history, not current); for
    anything else ``created_at``."""
    row = hit.row
    if hit.kind == "fact":
        if row.get("valid_until") is not None and row["valid_until"] <= now:
            return 0.0
        when = row.get("valid_from") or row["created_at"]
    else:
        when = row.get("occurred_at") or row.get("said_at") or row["created_at"]
    age_days = max(0.0, (now - when).total_seconds() / 86_400)
    return math.exp(-math.log(2) * age_days / half_life_days)


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
            (kind, table, retrievers.conditions(kind, table, caller, req, user_id))
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
            scopes.append(("memory", t.memory, retrievers.conditions("memory", t.memory, caller, req, user_id)))
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
            await retrievers.said_at(conn, caller.org_id, hits.values())
        linked = await search_graph.graph_links(conn, caller, req, user_id, [(h.kind, h.row) for h in hits.values()])
        half_lives = rt.settings.decay_half_life_days  # the organization's own, where importance counts
        if req.weights.importance and any(hit.kind == "memory" for hit in hits.values()):
            half_lives = await decay.half_lives(conn, caller.org_id, rt.settings)
        scored = _fuse(req, hits, linked, half_lives)
        if req.weights.reply and messages is not None:
            asked = [hit.row for _, hit, _ in scored[:n] if hit.kind == "message"]
            _answers(scored, await links.replies(conn, messages, asked), req.weights.reply)
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


def _fuse(
    req: SearchRequest,
    hits: dict[tuple[str, uuid.UUID], retrievers.Hit],
    linked: set[tuple[str, uuid.UUID]] | None,
    half_lives: Mapping[str, float],
) -> list[Scored]:
    """Reciprocal rank fusion, then the speaker, recency, importance, graph and session factors; best first.
    ``linked``: the hits tied to an entity the query names (None: the graph boost did not run). A memory's
    importance is its effective one: faded by its type's ``half_lives`` since it was last used."""
    now = datetime.now(UTC)
    w = req.weights
    when = dates.window(req.query, now) if w.time else None
    scored: list[Scored] = []
    names: dict[str, bool] = {}  # speaker → named by the query
    for hit in hits.values():
        rrf = sum(
            weight / (req.rrf_k + rank)
            for rank, weight in (
                (hit.vector_rank, w.vector),
                (hit.keyword_rank, w.keyword),
                (hit.memory_rank, w.memory),
            )
            if rank is not None
        )
        factor = 1.0
        recency = importance = faded = None
        named = None
        if w.name_match and hit.kind == "message" and hit.row.get("name"):
            speaker = hit.row["name"]
            named = names[speaker] if speaker in names else names.setdefault(speaker, _names_in(req.query, speaker))
            factor += w.name_match if named else 0.0
        if w.recency:
            recency = _recency(hit, now, w.recency_half_life_days)
            factor += w.recency * recency
        if w.importance and hit.kind == "memory":
            faded = decay.factor(hit.row, now, half_lives)
            importance = float(hit.row["importance"]) * faded
            factor += w.importance * (2 * importance - 1)
        timely = None
        if when is not None and hit.kind in ("message", "memory") and hit.row.get("occurred_at") is not None:
            timely = when[0] <= hit.row["occurred_at"] < when[1]
            factor += w.time if timely else 0.0
        graph = None
        if linked is not None and hit.kind in search_graph.LINKED:
            graph = (hit.kind, hit.row["id"]) in linked
            factor += w.graph if graph else 0.0
        final = rrf * max(factor, 0.0)
        explanation = {
            "vector_rank": hit.vector_rank,
            "vector_similarity": hit.vector_similarity,
            "vector_method": hit.vector_method,
            "neighbor_similarity": hit.neighbor_similarity,
            "name_match": named,
            "keyword_rank": hit.keyword_rank,
            "keyword_score": hit.keyword_score,
            "memory_rank": hit.memory_rank,
            "rrf": rrf,
            "recency": recency,
            "importance": importance,
            "decay": faded,
            "graph_match": graph,
            "time_match": timely,
            "final": final,
        }
        scored.append((final, hit, explanation))
    if w.session and any(hit.kind == "message" for _, hit, _ in scored):
        _session_coherence(scored, w.session)
    scored.sort(key=lambda s: (-s[0], s[1].row["id"]))
    return scored


def _answers(scored: list[Scored], replies: list[dict[str, Any]], weight: float) -> None:
    """Each turn that follows a question among the best hits gains ``weight`` × the question's score (read
    before any gain, so a chain of questions does not compound); a reply that no retriever found joins the
    hits. Sorts ``scored`` again."""
    place = {(hit.kind, hit.row["id"]): index for index, (_, hit, _) in enumerate(scored)}
    gains = {row["id"]: weight * scored[place["message", row.pop("question_id")]][0] for row in replies}
    for row in replies:
        index = place.get(("message", row["id"]))
        if index is None:
            place["message", row["id"]] = index = len(scored)
            scored.append((0.0, retrievers.Hit("message", row), {"rrf": 0.0, "final": 0.0}))
        final, hit, explanation = scored[index]
        explanation["reply"] = gains[row["id"]]
        explanation["final"] = final + explanation["reply"]
        scored[index] = (explanation["final"], hit, explanation)
    scored.sort(key=lambda s: (-s[0], s[1].row["id"]))


def _respond(req: SearchRequest, scored: list[Scored]) -> tuple[SearchResponse, list[tuple[uuid.UUID, float]]]:
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

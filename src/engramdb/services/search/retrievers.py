"""The retrievers of hybrid search: per type, a vector and a keyword list of candidates under every filter
(pushed into SQL), and the reading of the winners whole once fusion has picked them (``hybrid.py``).

Exact top-k under filters: pgvector filters *after* an HNSW scan, so a small user inside a large org could
get too few or wrong neighbours. When the rows that pass the filters number at most
``ENGRAM_EXACT_SEARCH_LIMIT``, the vector retriever scans them exactly (through the filter indexes);
otherwise it uses the HNSW index with a raised ``ef_search``; if the filters left it short of candidates,
pgvector 0.8's iterative scan (it goes on through the graph until enough rows pass the filters, up to
``hnsw.max_scan_tuples``), and an exact scan only if that too came up short (decision 0011).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import Select

from engramdb.services.core.pseudonyms import among
from engramdb.services.core.runtime import Runtime
from engramdb.services.search import contexts as search_contexts
from engramdb.services.search import documents as search_docs
from engramdb.services.search import graph as search_graph
from engramdb.storage import tables as t
from engramdb.storage.filters import at_turns
from engramdb.storage.vector_type import Embedding
from engramdb.storage.vectors import literal as model_literal

MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search
# The iterative HNSW scan (a filter that passes a small share of the index): how many rows it collects
# before they are re-sorted by score (fewer left recall@10 at 0.6-0.7 in bench/exactness.py's role filter,
# 300 gave 1.0), and how many index tuples it may visit (pgvector's default) before the exact scan takes over.
ITERATIVE_ROWS = 300
MAX_SCAN_TUPLES = 20_000
# The iterative scan when the server's pgvector has it (its setting exists), else the widest plain scan;
# true when the iterative one is on. CASE evaluates only the branch taken.
_ITERATIVE_ON = text(
    "SELECT CASE WHEN current_setting('hnsw.iterative_scan', true) IS NOT NULL"
    " THEN set_config('hnsw.iterative_scan', 'relaxed_order', true) IS NOT NULL"
    " AND set_config('hnsw.max_scan_tuples', :tuples, true) IS NOT NULL"
    " ELSE set_config('hnsw.ef_search', :ef, true) IS NULL END"
)
# Candidates carry only what fusion needs; the top_k winners are read whole afterwards (reading every
# candidate's metadata and tags cost more than the retrieval itself).
_RANKING = {
    # A message's content too, for the reply signal (does it ask something?, services/search/links.py).
    # It is passed through, so only the candidates a statement returns are read whole (the content of a
    # row with vectors is usually stored out of line); a test in SQL would read it for every row scanned.
    "message": ("id", "session_id", "seq", "name", "occurred_at", "created_at", "content"),
    "memory": (
        "id",
        "session_id",
        "importance",
        "memory_type",
        "last_accessed_at",
        "occurred_at",
        "created_at",
        "updated_at",
        "source_message_ids",  # the turns it was drawn from: provenance (links.sources) needs no look-up
        "content",  # does it name the speaker the query names? (fusion's name_match; passed through as above)
    ),
    "chunk": search_docs.RANKING,
    search_contexts.KIND: search_contexts.RANKING,
}


def ranking(kind: str, table: Table) -> list[ColumnElement[Any]]:
    """The columns a candidate of ``kind`` carries."""
    return [table.c[c] for c in _RANKING[kind]]


_FULL = {
    "message": ("user_id", "role", "metadata", "tags"),  # content: already a candidate's (_RANKING)
    "memory": ("user_id", "metadata", "tags"),  # content, memory_type: already a candidate's
}


@dataclass
class Hit:
    kind: str
    row: dict[str, Any]
    vector_rank: int | None = None
    vector_similarity: float | None = None
    vector_method: str | None = None
    neighbor_similarity: float | None = None
    keyword_rank: int | None = None
    keyword_score: float | None = None
    memory_rank: int | None = None


async def vector(
    conn: AsyncConnection,
    rt: Runtime,
    kind: str,
    table: Table,
    conds: list[ColumnElement[bool]],
    qvec: list[float],
    n: int,
    neighbor: float,
    matching: int,
    org_id: uuid.UUID,
    context: float,
) -> tuple[list[dict[str, Any]], str]:
    """The ``n`` rows closest to ``qvec`` under ``conds``; for messages each row's ``similarity`` also
    borrows ``neighbor`` × the similarity of its most similar adjacent turn (same session, seq ± 1).
    ``matching`` is the capped count of embedded rows under ``conds``."""
    conds = [*conds, embedded_with(rt, table)]
    smooth = kind == "message" and neighbor > 0
    if matching <= rt.settings.exact_search_limit:
        shape = ("exact", kind, table.name, neighbor if smooth else 0.0, context)
        statement = rt.statements.get(
            shape, conds, lambda: _exact_statement(rt, kind, table, conds, neighbor if smooth else 0.0, context)
        )
        rows = (await conn.execute(statement, {"query_vector": qvec, "search_limit": n})).mappings().all()
        return [dict(r) for r in rows], "exact"
    distance, similarity = _scores(table, rt.embedder.dimensions, context)
    columns = ranking(kind, table)
    # The organization as a literal lets the planner match its own index (services/maintenance/indexes.py).
    own_index = table.c.org_id == literal_column(f"'{uuid.UUID(str(org_id))}'::uuid")
    base = select(*columns, similarity.label("similarity")).where(*conds, own_index)
    method = "hnsw"
    # The index orders by the message's own vector; messages are rescored by their parts, so fetch twice
    # as many as needed to let a message that matches by one sentence or its context move up.
    fetch = 2 * n if "part_embeddings" in table.c else n
    ef_search = min(MAX_EF_SEARCH, max(40, 2 * fetch))
    await conn.execute(text("SELECT set_config('hnsw.ef_search', :ef, true)"), {"ef": str(ef_search)})
    vector_only = {"query_vector": qvec}
    found = [dict(r) for r in (await conn.execute(base.order_by(distance).limit(fetch), vector_only)).mappings()]
    if len(found) < n:
        # The filters dropped most index hits (a scope that is a small share of the index): pgvector 0.8's
        # iterative scan goes on through the graph until ITERATIVE_ROWS rows pass them (or it has visited
        # MAX_SCAN_TUPLES). Relaxed order returns them a little out of distance order, and the nearest
        # ones only among the first few hundred: collect that many, then keep the best by score below.
        # A server of your own may run an older pgvector (0.6 and 0.7 have no iterative scan): there the
        # second scan is the widest plain one, as before 0.8.
        iterative = await conn.scalar(_ITERATIVE_ON, {"tuples": str(MAX_SCAN_TUPLES), "ef": str(MAX_EF_SEARCH)})
        wide = max(ITERATIVE_ROWS, fetch) if iterative else fetch
        found = [dict(r) for r in (await conn.execute(base.order_by(distance).limit(wide), vector_only)).mappings()]
        if iterative:  # off again: a later scan in this transaction (another retriever) wants distance order
            await conn.execute(text("SELECT set_config('hnsw.iterative_scan', 'off', true)"))
    if len(found) < n:  # a scope too rare in the index even for the iterative scan
        exact = base.order_by(text("similarity DESC")).limit(n)  # a derived column: no index scan
        found = [dict(r) for r in (await conn.execute(exact, vector_only)).mappings()]
        method = "exact"
    for row in found:
        row["score"] = row["similarity"]
    found.sort(key=lambda r: -r["score"])  # index order is by the message's vector, scores by its best part
    del found[n:]
    if smooth and found:
        await _smooth_with_neighbors(conn, table, conds, similarity, qvec, found, neighbor)
    return found, method


def _exact_statement(
    rt: Runtime, kind: str, table: Table, conds: list[ColumnElement[bool]], neighbor: float, context: float
) -> Select[Any]:
    """The exact scan of :func:`vector` over the rows under ``conds`` (which hold ``embedded_with``: the
    caller adds it), best ``search_limit`` first; for messages with ``neighbor`` each row's score also
    borrows ``neighbor`` × its most similar adjacent turn's similarity. The query's vector and the limit
    are bound when it is run, so it is built once per scope (``rt.statements``)."""
    distance, similarity = _scores(table, rt.embedder.dimensions, context)
    columns = ranking(kind, table)
    if neighbor:
        # Neighbours are the turns at seq ± 1 of the same session (as on the index path below), read
        # with window functions over one sort rather than self-joins.
        # MATERIALIZED: inlined, the similarity (parts and all) would be computed once per reference.
        scored = select(*columns, similarity.label("similarity")).where(*conds).cte("scored")
        scored = scored.prefix_with("MATERIALIZED")

        def adjacent(step: int) -> ColumnElement[float]:
            shift = func.lag if step < 0 else func.lead
            seq, similarity = (
                shift(c).over(partition_by=scored.c.session_id, order_by=scored.c.seq)
                for c in (scored.c.seq, scored.c.similarity)
            )
            return case((seq == scored.c.seq + step, similarity))

        near = select(scored, func.greatest(adjacent(-1), adjacent(1)).label("neighbor_similarity")).subquery()
        score = near.c.similarity + neighbor * func.coalesce(near.c.neighbor_similarity, 0.0)
        query = select(near, score.label("score"))
    else:
        inner = select(*columns, similarity.label("similarity")).where(*conds).subquery()
        query = select(inner, inner.c.similarity.label("score"))
    # Ordering a derived column keeps the planner off the HNSW index: filter indexes, then a sort.
    return query.order_by(text("score DESC")).limit(bindparam("search_limit", type_=Integer))


def _scores(table: Table, dimensions: int, context: float) -> tuple[ColumnElement[float], ColumnElement[float]]:
    """The row's own vector's cosine distance to the query (what the HNSW index orders by) and its cosine
    similarity, the query's vector bound when the statement runs (``query_vector``). A message scores as
    the best of its own (mean) vector, its best sentence, and ``context`` × its vector after the previous
    turn (see services/core/runtime.py ``embed_messages``): the context is discounted because it also
    carries the previous turn's topic."""
    query = bindparam("query_vector", type_=Embedding(dimensions))
    distance = cast(table.c.embedding, Embedding(dimensions)).cosine_distance(query)
    if "part_embeddings" not in table.c:
        return distance, 1 - distance
    sentence = func.unnest(table.c.part_embeddings).column_valued("sentence")
    best = select(func.max(1 - sentence.op("<=>", return_type=Float)(query))).scalar_subquery()
    if not context:
        return distance, func.greatest(1 - distance, best)
    in_context = context * (1 - table.c.context_embedding.op("<=>", return_type=Float)(query))
    return distance, func.greatest(1 - distance, best, in_context)


def embedded_with(rt: Runtime, table: Table) -> ColumnElement[bool]:
    """Rows whose vector comes from the configured model (the partial HNSW index's predicate)."""
    return table.c.embedding_model == literal_column(model_literal(rt.embedder.model))


def count(conds: list[ColumnElement[bool]], limit: int) -> Select[Any]:
    """How many rows pass ``conds``, counting no further than ``limit + 1``."""
    capped = select(literal(1)).where(*conds).limit(limit + 1).subquery()
    return select(func.count()).select_from(capped)


async def _smooth_with_neighbors(
    conn: AsyncConnection,
    table: Table,
    conds: list[ColumnElement[bool]],
    similarity: ColumnElement[float],
    qvec: list[float],
    found: list[dict[str, Any]],
    neighbor: float,
) -> None:
    """The index path's version of the window in the exact path: look the adjacent turns up."""
    wanted = {(r["session_id"], r["seq"] + d) for r in found for d in (-1, 1)}
    query = (
        select(table.c.session_id, table.c.seq, similarity.label("similarity"))
        .select_from(at_turns(table, list(wanted)))
        .where(*conds)
    )
    sims = {(r.session_id, r.seq): r.similarity for r in await conn.execute(query, {"query_vector": qvec})}
    for row in found:
        near = [
            sims[k] for k in ((row["session_id"], row["seq"] - 1), (row["session_id"], row["seq"] + 1)) if k in sims
        ]
        row["neighbor_similarity"] = max(near) if near else None
        row["score"] = row["similarity"] + neighbor * (max(near) if near else 0.0)
    found.sort(key=lambda r: -r["score"])


_BM25_K1, _BM25_B = 1.2, 0.75


def _lexemes(language: ColumnElement[Any], query: ColumnElement[str]) -> Any:
    """The query's lexemes (stop words dropped, stems kept)."""
    words = func.unnest(func.to_tsvector(language, query)).table_valued("lexeme", "positions", "weights")
    return select(words.c.lexeme).cte("terms")


async def keyword(
    conn: AsyncConnection,
    rt: Runtime,
    kind: str,
    table: Table,
    conds: list[ColumnElement[bool]],
    query: str,
    n: int,
    count_embedded: bool,
) -> tuple[list[dict[str, Any]], int | None]:
    """The ``n`` best keyword matches under ``conds`` by BM25 and the capped count of rows under ``conds``
    (embedded rows when ``count_embedded``: the vector side's choice of method), in one round trip.

    BM25 over the searched rows themselves: a word's weight (IDF) comes from how many of *these* rows
    contain it, so a word every turn of this user shares ("go", a friend's name) counts little and a rare
    one a lot; Postgres' ``ts_rank`` has no IDF. Term frequency is taken as 1 (chat turns are short) and
    the length is the row's number of distinct lexemes.
    """
    statement = rt.statements.get(
        ("keyword", kind, table.name, count_embedded),
        conds,
        lambda: _keyword_statement(rt, kind, table, conds, count_embedded),
    )
    found = await conn.execute(statement, {"search_query": query, "search_limit": n})
    rows = [dict(r) for r in found.mappings().all()]
    return rows, (rows[0]["matching"] if rows and count_embedded else None)


def _keyword_statement(
    rt: Runtime, kind: str, table: Table, conds: list[ColumnElement[bool]], count_embedded: bool
) -> Select[Any]:
    """The BM25 statement of :func:`keyword`, with the query (``search_query``) and the number of rows
    (``search_limit``) bound when it is run, so it is built once per scope (``rt.statements``)."""
    query = bindparam("search_query", type_=String)
    # The configuration is a literal (settings allow only [a-z_]+): converting a string to regconfig at
    # run time is not foldable, and the any-word query below must fold to a constant so the planner can
    # weigh the full-text index.
    language: ColumnElement[Any] = literal_column(f"'{rt.settings.search_language}'::regconfig")
    terms = _lexemes(language, query)
    every_word = cast(func.plainto_tsquery(language, query), Text)
    any_word = cast(func.replace(every_word, literal(" & "), literal(" | ")), TSQUERY)
    matched = (
        select(*ranking(kind, table), table.c.search_tsv, func.length(table.c.search_tsv).label("len"))
        .where(*conds, table.c.search_tsv.op("@@")(any_word))
        .cte("matched")
    )
    # Which query words each matched row holds: its own lexemes (read once per row) that are the query's,
    # not one ``@@`` per row and word (each re-reading the row's vector and parsing the word).
    own = func.unnest(matched.c.search_tsv).table_valued("lexeme", "positions", "weights").alias("own")
    pairs = (
        select(matched.c.id, own.c.lexeme)
        .select_from(matched.join(own, true()))
        .where(own.c.lexeme.in_(select(terms.c.lexeme)))
        .cte("pairs")
    )
    df = select(pairs.c.lexeme, func.count().label("df")).group_by(pairs.c.lexeme).cte("df")
    scope = [*conds, embedded_with(rt, table)] if count_embedded else conds
    # A CTE, read twice (the IDF and the returned count) but counted once: a scalar subquery written twice
    # would be run twice.
    total = select(count(scope, rt.settings.exact_search_limit).cte("total").c[0]).scalar_subquery()
    idf = func.ln(1 + (func.greatest(total, df.c.df) - df.c.df + 0.5) / (df.c.df + 0.5))
    per_row = (
        select(pairs.c.id, func.sum(idf).label("idf"))
        .select_from(pairs.join(df, pairs.c.lexeme == df.c.lexeme))
        .group_by(pairs.c.id)
        .subquery("per_row")
    )
    average = select(func.avg(matched.c.len)).scalar_subquery()
    norm = (_BM25_K1 + 1) / (1 + _BM25_K1 * (1 - _BM25_B + _BM25_B * matched.c.len / func.nullif(average, 0)))
    rank = per_row.c.idf * norm
    return (
        select(*(matched.c[c] for c in _RANKING[kind]), rank.label("rank"), total.label("matching"))
        .select_from(matched.join(per_row, per_row.c.id == matched.c.id))
        .order_by(rank.desc(), matched.c.id)
        .limit(bindparam("search_limit", type_=Integer))
    )


async def hydrate(conn: AsyncConnection, winners: list[Hit]) -> list[Hit]:
    """Read the rest of each winner's row (user, metadata, tags, ...); a winner deleted by another
    request since the candidates were read (a new snapshot per statement) is left out."""
    present: set[tuple[str, uuid.UUID]] = set()
    for kind in dict.fromkeys(hit.kind for hit in winners):
        ids = [hit.row["id"] for hit in winners if hit.kind == kind]
        if kind in _FULL:
            table = t.message if kind == "message" else t.memory
            statement = select(table.c.id, *(table.c[c] for c in _FULL[kind])).where(among(table.c.id, ids))
            full = {r["id"]: dict(r) for r in (await conn.execute(statement)).mappings().all()}
        elif kind in search_docs.KINDS.values():
            full = await search_docs.full_rows(conn, kind, [hit.row for hit in winners if hit.kind == kind])
        elif kind == search_contexts.KIND:
            full = await search_contexts.full_rows(conn, ids)
        else:
            full = await search_graph.full_rows(conn, kind, ids)
        for hit in winners:
            if hit.kind == kind and hit.row["id"] in full:
                hit.row.update(full[hit.row["id"]])
                present.add((kind, hit.row["id"]))
    return [hit for hit in winners if (hit.kind, hit.row["id"]) in present]

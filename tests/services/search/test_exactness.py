"""Exact top-k under filters, at test scale: a small user inside a larger org gets the exact vector
top-10 (the count-then-exact-scan path), an org-wide search uses the HNSW index, and a scope that is a
small share of the index gets its top-10 from the index too (pgvector 0.8's iterative scan)."""

from __future__ import annotations

import random
import uuid

import psycopg
import pytest
from sqlalchemy import text

from engramdb.config import Settings
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.schemas.search import SearchRequest
from engramdb.services.core.runtime import Runtime
from engramdb.services.search import hybrid as search
from engramdb.services.search import retrievers
from engramdb.services.tenancy import keys
from engramdb.storage import tables
from engramdb.storage.database import Database

MODEL = MiniLMEmbedder.model


@pytest.fixture(scope="module")
async def loaded(database_url: str, db: Database, embedder: MiniLMEmbedder):  # type: ignore[no-untyped-def]
    org, key = await keys.create_organization(db, name="exactness")
    caller = await keys.authenticate(db, key.api_key)
    small, big, rare = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sessions = {small: uuid.uuid4(), big: uuid.uuid4(), rare: uuid.uuid4()}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for user, count in ((small, 100), (big, 1400), (rare, 60)):
            conn.execute("INSERT INTO user_account (org_id, id) VALUES (%s, %s)", (org.id, user))
            conn.execute(
                "INSERT INTO session (org_id, id, user_id) VALUES (%s, %s, %s)", (org.id, sessions[user], user)
            )
            conn.execute(
                """INSERT INTO message (org_id, id, session_id, seq, user_id, role, content, content_hash,
                                        occurred_at, embedding, embedding_model)
                   SELECT %s, gen_random_uuid(), %s, g, %s, 'user', 'row ' || g, '\\x00', now(),
                          (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, 384) WHERE g > 0), %s
                   FROM generate_series(1, %s) g""",
                (org.id, sessions[user], user, MODEL, count),
            )
        conn.execute("ANALYZE message")
    settings = Settings(database_url=database_url, exact_search_limit=500)
    rt = Runtime.build(settings, db, embedder=embedder)
    return rt, caller, small, sessions[small], org.id, rare


def _exact(database_url: str, org_id: uuid.UUID, column: str, value: uuid.UUID, vector: list[float]) -> list[uuid.UUID]:
    literal = "[" + ",".join(repr(x) for x in vector) + "]"
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            f"SELECT id FROM message WHERE org_id = %s AND {column} = %s "
            f"ORDER BY (embedding::vector(384) <=> %s::vector(384)) + 0 LIMIT 10",
            (org_id, value, literal),
        ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("scope", ["user_id", "session_id"])
async def test_small_scope_gets_the_exact_top_10(loaded, database_url: str, scope: str) -> None:  # type: ignore[no-untyped-def]
    rt, caller, user, session, org_id, _ = loaded
    rng = random.Random(scope)
    words = "garden trip sister coffee violin marathon puppy paint museum budget".split()
    for _ in range(10):
        query = " ".join(rng.sample(words, 3))
        (vector,) = await rt.embedder.embed_batch([query], kind="query")
        target = user if scope == "user_id" else session
        req = SearchRequest(
            query=query,
            mode="vector",
            types=["messages"],
            top_k=10,
            explain=True,
            weights={"neighbor": 0, "name_match": 0, "session": 0, "length": 0},
            **{scope: target},
        )
        response, _ = await search.search(rt, caller, req)
        assert [r.id for r in response.results] == _exact(database_url, org_id, scope, target, vector)
        assert {r.explanation.vector_method for r in response.results if r.explanation} == {"exact"}


async def test_org_wide_search_uses_the_index(loaded) -> None:  # type: ignore[no-untyped-def]
    rt, caller, *_ = loaded
    req = SearchRequest(query="coffee and museums", mode="vector", types=["messages"], top_k=10, explain=True)
    response, _ = await search.search(rt, caller, req)
    assert len(response.results) == 10
    assert {r.explanation.vector_method for r in response.results if r.explanation} == {"hnsw"}


async def test_a_scope_rare_in_the_index_gets_its_top_10_from_the_index(loaded, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """The case of a large organization that is a small share of a shared index: 60 assistant turns among
    1,560 rows (4 % of the index) searched on the index path still get their 50 candidates, and so their
    exact top-10, from the index, as the iterative scan goes on until enough rows pass the filter
    (pgvector 0.6 saw about 38 of them in its widest scan, 1,000 hits, and fell back to an exact scan).
    At this scale the planner would rather sort the 60 rows, so it is steered to the index as it is at scale."""
    rt, caller, *_, org_id, rare = loaded
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE message SET role = 'assistant' WHERE user_id = %s", (rare,))
        name = conn.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        conn.execute(f'ALTER DATABASE "{name}" SET enable_sort = off')  # so order comes from the index
    steered = Database.connect(rt.settings, url=database_url)  # its connections start with those settings
    on_index = Runtime.build(rt.settings.model_copy(update={"exact_search_limit": 0}), steered, embedder=rt.embedder)
    try:
        for query in ("violin lessons on a budget", "a museum trip with my sister"):
            (vector,) = await rt.embedder.embed_batch([query], kind="query")
            req = SearchRequest(
                query=query,
                mode="vector",
                types=["messages"],
                top_k=10,
                explain=True,
                weights={"neighbor": 0, "name_match": 0, "session": 0, "length": 0},
                filters={"role": ["assistant"]},
            )
            response, _ = await search.search(on_index, caller, req)
            assert [r.id for r in response.results] == _exact(database_url, org_id, "user_id", rare, vector)
            assert {r.explanation.vector_method for r in response.results if r.explanation} == {"hnsw"}
        # The iterative scan is switched off again for the scans that follow in the same transaction.
        async with steered.tenant(org_id) as conn:
            conds = [tables.message.c.org_id == org_id, tables.message.c.role == "assistant"]
            found, method = await retrievers.vector(
                conn, on_index, "message", tables.message, conds, vector, 10, 0, 60, org_id, 0
            )
            assert method == "hnsw" and len(found) == 10
            assert await conn.scalar(text("SELECT current_setting('hnsw.iterative_scan')")) == "off"
    finally:
        await steered.dispose()


async def test_the_index_path_borrows_the_same_neighbour_similarity_as_the_exact_scan(  # type: ignore[no-untyped-def]
    loaded, database_url: str
) -> None:
    """A turn's score borrows 0.4 × its most similar adjacent turn's: the exact scan reads the neighbours
    with window functions, the index path looks them up by (session, seq); both must agree. Two sessions
    with the same sequence numbers: a neighbour is the adjacent turn of the same session only."""
    rt, _, _, _, org_id, _ = loaded
    user = uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO user_account (org_id, id) VALUES (%s, %s)", (org_id, user))
        for _ in range(2):
            session = uuid.uuid4()
            conn.execute("INSERT INTO session (org_id, id, user_id) VALUES (%s, %s, %s)", (org_id, session, user))
            conn.execute(
                """INSERT INTO message (org_id, id, session_id, seq, user_id, role, content, content_hash,
                                        occurred_at, embedding, embedding_model)
                   SELECT %s, gen_random_uuid(), %s, g, %s, 'user', 'turn ' || g, '\\x00', now(),
                          (SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, 384) WHERE g > 0), %s
                   FROM generate_series(1, 50) g""",
                (org_id, session, user, MODEL),
            )
    on_index = Runtime.build(rt.settings.model_copy(update={"exact_search_limit": 0}), rt.db, embedder=rt.embedder)
    conds = [tables.message.c.org_id == org_id, tables.message.c.user_id == user]
    (vector,) = await rt.embedder.embed_batch(["coffee with my sister"], kind="query")
    async with rt.db.tenant(org_id) as conn:
        exact, how = await retrievers.vector(
            conn, rt, "message", tables.message, conds, vector, 30, 0.4, 100, org_id, 0
        )
        indexed, method = await retrievers.vector(
            conn, on_index, "message", tables.message, conds, vector, 30, 0.4, 100, org_id, 0
        )
    assert (how, method) == ("exact", "hnsw") and len(exact) == len(indexed) == 30
    by_id = {row["id"]: row for row in exact}
    shared = [row for row in indexed if row["id"] in by_id]
    assert len(shared) >= 10
    for row in shared:
        assert row["neighbor_similarity"] is not None  # every turn has at least one neighbour
        assert row["neighbor_similarity"] == pytest.approx(by_id[row["id"]]["neighbor_similarity"], abs=1e-6)
        assert row["score"] == pytest.approx(row["similarity"] + 0.4 * row["neighbor_similarity"], abs=1e-6)

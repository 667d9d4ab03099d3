"""Per-organization vector indexes: an organization over the threshold gets its own partial HNSW index on
messages (partitioned: built per partition and attached) and memories (built concurrently); the search
path's statement can use it; building again is a no-op; searches through it still find the exact top-10."""

from __future__ import annotations

import random
import uuid

import psycopg
import pytest

from engramdb.config import Settings
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.schemas.search import SearchRequest
from engramdb.services.core.runtime import Runtime
from engramdb.services.maintenance.indexes import ensure_org_indexes
from engramdb.services.search import hybrid as search
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database
from engramdb.storage.vectors import org_index_name

MODEL = MiniLMEmbedder.model
VECTOR = "(SELECT array_agg(random() - 0.5)::vector FROM generate_series(1, 384) WHERE g > 0)"


def _load(conn: psycopg.Connection, org_id: uuid.UUID, rows: int) -> None:
    user, session = uuid.uuid4(), uuid.uuid4()
    conn.execute("INSERT INTO user_account (org_id, id) VALUES (%s, %s)", (org_id, user))
    conn.execute("INSERT INTO session (org_id, id, user_id) VALUES (%s, %s, %s)", (org_id, session, user))
    conn.execute(
        f"""INSERT INTO message (org_id, id, session_id, seq, user_id, role, content, content_hash, occurred_at,
                                 embedding, embedding_model)
            SELECT %s, gen_random_uuid(), %s, g, %s, 'user', 'row ' || g, '\\x00', now(), {VECTOR}, %s
            FROM generate_series(1, %s) g""",
        (org_id, session, user, MODEL, rows),
    )
    conn.execute(
        f"""INSERT INTO memory (org_id, id, user_id, content, memory_type, state, importance, access_count,
                                source, content_hash, version, embedding, embedding_model)
            SELECT %s, gen_random_uuid(), %s, 'memory ' || g, 'fact', 'active', 0.5, 0, 'api', '\\x00', 1,
                   {VECTOR}, %s
            FROM generate_series(1, %s) g""",
        (org_id, user, MODEL, rows),
    )


@pytest.fixture(scope="module")
async def orgs(database_url: str, db: Database):  # type: ignore[no-untyped-def]
    big, big_key = await keys.create_organization(db, name="big")
    small, _ = await keys.create_organization(db, name="small")
    with psycopg.connect(database_url, autocommit=True) as conn:
        _load(conn, big.id, 1200)
        _load(conn, small.id, 300)
        conn.execute("ANALYZE message")
        conn.execute("ANALYZE memory")
    built = ensure_org_indexes(database_url, MODEL, 384, rows=1000, build_memory="64MB")
    return big.id, small.id, big_key.api_key, built


def _valid(conn: psycopg.Connection, name: str) -> bool | None:
    row = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,)).fetchone()
    return None if row is None else bool(row[0])


def test_only_the_large_org_gets_indexes_and_they_are_valid(orgs, database_url: str) -> None:  # type: ignore[no-untyped-def]
    big, small, _, built = orgs
    assert sorted(built) == [f"memory:{big}", f"message:{big}"]
    with psycopg.connect(database_url) as conn:
        for table in ("message", "memory"):
            assert _valid(conn, org_index_name(table, MODEL, big)) is True  # a partitioned index is valid
            assert _valid(conn, org_index_name(table, MODEL, small)) is None  # once every partition has one
        partitions = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'message'::regclass").fetchone()
        attached = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass(%s)",
            (org_index_name("message", MODEL, big),),
        ).fetchone()
        assert partitions == attached


def test_building_again_does_nothing(orgs, database_url: str) -> None:  # type: ignore[no-untyped-def]
    assert ensure_org_indexes(database_url, MODEL, 384, rows=1000, build_memory="64MB") == []
    assert ensure_org_indexes(database_url, MODEL, 384, rows=0, build_memory="64MB") == []


@pytest.mark.parametrize("table", ["message", "memory"])
def test_the_search_statement_can_use_the_org_index(orgs, database_url: str, table: str) -> None:  # type: ignore[no-untyped-def]
    big, *_ = orgs
    probe = "[" + ",".join("0.05" for _ in range(384)) + "]"
    with psycopg.connect(database_url) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                f"EXPLAIN SELECT id FROM {table} WHERE org_id = '{big}'::uuid AND embedding_model = %s "
                "ORDER BY embedding::vector(384) <=> %s::vector(384) LIMIT 10",
                (MODEL, probe),
            ).fetchall()
        )
    own = org_index_name(table, MODEL, big)
    assert own in plan or "ix_p_" in plan, plan


async def test_org_wide_search_through_the_org_index_finds_the_exact_top_10(  # type: ignore[no-untyped-def]
    orgs, database_url: str, db: Database, embedder: MiniLMEmbedder
) -> None:
    big, _, key, _ = orgs
    caller = await keys.authenticate(db, key)
    rt = Runtime.build(Settings(database_url=database_url, exact_search_limit=0), db, embedder=embedder)
    rng = random.Random(7)
    words = "garden trip sister coffee violin marathon puppy paint museum budget".split()
    recalls = []
    for _ in range(10):
        query = " ".join(rng.sample(words, 3))
        (vector,) = await rt.embedder.embed_batch([query], kind="query")
        req = SearchRequest(query=query, mode="vector", types=["memories"], top_k=10, explain=True)
        response, _ = await search.search(rt, caller, req)
        assert {r.explanation.vector_method for r in response.results if r.explanation} == {"hnsw"}
        literal = "[" + ",".join(repr(x) for x in vector) + "]"
        with psycopg.connect(database_url) as conn:
            exact = {
                r[0]
                for r in conn.execute(
                    "SELECT id FROM memory WHERE org_id = %s ORDER BY (embedding::vector(384) <=> %s::vector(384)) + 0 "
                    "LIMIT 10",
                    (big, literal),
                ).fetchall()
            }
        recalls.append(len(exact & {r.id for r in response.results}) / 10)
    assert sum(recalls) / len(recalls) >= 0.9

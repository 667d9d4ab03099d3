"""Vector indexes and vector SQL for one embedding model.

Vectors are stored untyped, next to ``embedding_model``. For the configured model, a partial HNSW
index on ``(embedding::vector(N))`` covers exactly that model's rows; queries use the same expression
and a literal model predicate so the planner can match the partial index.
"""

from __future__ import annotations

import hashlib
import re
import uuid

import psycopg
from psycopg import sql

from engramdb.errors import ConfigurationError

EMBEDDED_TABLES = ("message", "memory", "chunk", "offloaded_context")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9._:/@+-]{1,200}$")


def check_model_name(model: str) -> str:
    if not _MODEL_NAME.match(model):
        raise ConfigurationError(f"embedding model name {model!r} has characters Engram does not accept")
    return model


def index_name(table: str, model: str) -> str:
    return f"ix_{table}_hnsw_{hashlib.sha1(model.encode()).hexdigest()[:10]}"


def _hnsw(dimensions: int) -> sql.Composed:
    """The index method and expression every vector index uses (queries use the same expression)."""
    return sql.SQL("USING hnsw ((embedding::vector({})) vector_cosine_ops) WITH (m = 16, ef_construction = 64)").format(
        sql.Literal(dimensions)
    )


def _build_concurrently(conn: psycopg.Connection, name: str, table: str, how: sql.Composable) -> None:
    """``CREATE INDEX CONCURRENTLY``, first dropping what a failed earlier build left (an invalid index)."""
    if _index_state(conn, name) is False:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY {}").format(sql.Identifier(name)))
    conn.execute(
        sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} {}").format(
            sql.Identifier(name), sql.Identifier(table), how
        )
    )


def ensure_vector_indexes(conn: psycopg.Connection, model: str, dimensions: int) -> list[str]:
    """Create the HNSW (cosine) index of ``model`` on every embedded table if it is missing."""
    check_model_name(model)
    created = []
    for table in EMBEDDED_TABLES:
        name = index_name(table, model)
        exists = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()
        if exists and exists[0] is not None:
            continue
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} {} WHERE embedding_model = {}").format(
                sql.Identifier(name), sql.Identifier(table), _hnsw(dimensions), sql.Literal(model)
            )
        )
        created.append(name)
    return created


def org_index_name(table: str, model: str, org_id: uuid.UUID) -> str:
    """The name of one organization's own HNSW index (63 characters at most, as Postgres requires)."""
    return f"{index_name(table, model)}_{org_id.hex}"


def large_orgs(conn: psycopg.Connection, table: str, model: str, rows: int) -> list[uuid.UUID]:
    """Organizations with more than ``rows`` rows of ``table`` embedded by ``model``."""
    found = conn.execute(
        sql.SQL("SELECT org_id FROM {} WHERE embedding_model = %s GROUP BY org_id HAVING count(*) > %s").format(
            sql.Identifier(table)
        ),
        (model, rows),
    ).fetchall()
    return [r[0] for r in found]


def _index_state(conn: psycopg.Connection, name: str) -> bool | None:
    """None when the index does not exist, else whether it is valid (a failed concurrent build is not)."""
    row = conn.execute("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)", (name,)).fetchone()
    return None if row is None else bool(row[0])


def ensure_org_index(conn: psycopg.Connection, table: str, model: str, dimensions: int, org_id: uuid.UUID) -> bool:
    """Give one organization its own HNSW index of ``model`` on ``table``; True if it was built now.

    The shared index covers every organization, and pgvector filters the rows its scan returns: since 0.8
    the iterative scan goes on until enough of the organization's rows turn up
    (``services/search/retrievers.py``), but for an organization that holds a small share of the shared
    index that means walking past many other organizations' rows, and beyond ``hnsw.max_scan_tuples`` an
    exact scan. Its own partial index (``WHERE org_id = …``) is searched directly. Built without blocking
    writes: ``CONCURRENTLY`` on a plain table; on a partitioned one, an index on the parent alone, then
    each partition's built concurrently and attached (new partitions get theirs when they are created).
    Needs an autocommit connection.
    """
    check_model_name(model)
    name = org_index_name(table, model, org_id)
    if _index_state(conn, name):
        return False
    how = sql.SQL("{} WHERE org_id = {}::uuid AND embedding_model = {}").format(
        _hnsw(dimensions), sql.Literal(str(org_id)), sql.Literal(model)
    )
    partitions = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s) ORDER BY 1",
            (table,),
        ).fetchall()
    ]
    if not partitions:
        _build_concurrently(conn, name, table, how)
        return True
    conn.execute(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON ONLY {} {}").format(sql.Identifier(name), sql.Identifier(table), how)
    )
    for partition in partitions:
        part_name = "ix_p_" + hashlib.sha1(f"{partition}/{name}".encode()).hexdigest()[:32]
        attached = conn.execute(
            "SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s) AND inhparent = to_regclass(%s)",
            (part_name, name),
        ).fetchone()
        if attached:
            continue
        _build_concurrently(conn, part_name, partition, how)
        conn.execute(
            sql.SQL("ALTER INDEX {} ATTACH PARTITION {}").format(sql.Identifier(name), sql.Identifier(part_name))
        )
    return True


def literal(model: str) -> str:
    """The model as a SQL string literal (validated; used so the partial index predicate matches)."""
    return "'" + check_model_name(model) + "'"

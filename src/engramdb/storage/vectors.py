"""Vector indexes and vector SQL for one embedding model.

Vectors are stored untyped, next to ``embedding_model``. For the configured model, a partial HNSW
index on ``(embedding::vector(N))`` covers exactly that model's rows; queries use the same expression
and a literal model predicate so the planner can match the partial index.
"""

from __future__ import annotations

import hashlib
import re

import psycopg
from psycopg import sql

from engramdb.errors import ConfigurationError

EMBEDDED_TABLES = ("message", "memory")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9._:/@+-]{1,200}$")


def check_model_name(model: str) -> str:
    if not _MODEL_NAME.match(model):
        raise ConfigurationError(f"embedding model name {model!r} has characters Engram does not accept")
    return model


def index_name(table: str, model: str) -> str:
    return f"ix_{table}_hnsw_{hashlib.sha1(model.encode()).hexdigest()[:10]}"


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
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw ((embedding::vector({})) vector_cosine_ops) "
                "WITH (m = 16, ef_construction = 64) WHERE embedding_model = {}"
            ).format(sql.Identifier(name), sql.Identifier(table), sql.Literal(dimensions), sql.Literal(model))
        )
        created.append(name)
    return created


def literal(model: str) -> str:
    """The model as a SQL string literal (validated; used so the partial index predicate matches)."""
    return "'" + check_model_name(model) + "'"

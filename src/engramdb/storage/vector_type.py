"""The ``vector`` column type, written in pgvector's binary form.

pgvector's SQLAlchemy type sends a vector as text (``'[0.0123,…]'``): formatting 384 floats in Python
costs about 0.3 ms per vector, and PostgreSQL parses them back, which for ingest (two or more vectors a
message) and search (the query's vector in every vector statement) is a measurable share of the work.
:class:`Embedding` sends :class:`Packed` instead, which the dumper registered here passes to PostgreSQL
as the binary input ``vector_recv`` reads (a 16-bit dimension count, 16 unused bits, then each component
as a big-endian 32-bit float): a ``struct.pack``, a few microseconds. The parameter's type is left for
the server to infer from where it is used (a ``vector`` column, ``<=>`` against a vector), so no type
oid needs looking up. Vectors are read back as before (pgvector's text result processing).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from pgvector.sqlalchemy import VECTOR
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy.engine import Dialect

MAX_DIMENSIONS = 16_000  # pgvector's limit for a vector


class Packed:
    """A vector in pgvector's binary form."""

    __slots__ = ("data",)

    def __init__(self, values: Sequence[float]) -> None:
        n = len(values)
        if not 0 < n <= MAX_DIMENSIONS:
            raise ValueError(f"a vector has 1 to {MAX_DIMENSIONS} dimensions, not {n}")
        self.data = struct.pack(f">HH{n}f", n, 0, *values)


class _PackedDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Packed) -> bytes:
        return obj.data


psycopg.adapters.register_dumper(Packed, _PackedDumper)


class Embedding(VECTOR):
    """pgvector's ``vector`` type (``isinstance(…, VECTOR)`` holds), bound in binary form."""

    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Packed | None]:
        def process(value: Any) -> Packed | None:
            return None if value is None else Packed(value)

        return process

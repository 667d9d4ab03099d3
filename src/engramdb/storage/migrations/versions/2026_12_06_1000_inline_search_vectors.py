"""Keep ``search_tsv`` in the row (``STORAGE MAIN``) on messages and memories.

A message row carries two vectors of 1.5 KB each, stored plain (pgvector's default: never compressed, never
moved out of the row), so every row is over PostgreSQL's 2 KB toasting target and the toaster moved the
row's other variable-length columns out of line, ``search_tsv`` among them. The keyword retriever reads
``search_tsv`` of every matching row several times (the match, its length, its lexemes), and each read of
an out-of-line value is a TOAST index lookup and more pages: on LoCoMo the message keyword statement spent
about half its time there. ``MAIN`` keeps the (small) value in the row unless the row would not fit a
page. It applies to rows written from now on; existing rows move when they are rewritten
(``VACUUM FULL message`` and ``VACUUM FULL memory`` in a maintenance window; they lock the tables while
they run).

Revision ID: 0022_inline_search_vectors
Revises: 0021_rate_gcra
Create Date: 2026-12-06 10:00
"""

from __future__ import annotations

from alembic import op

revision = "0022_inline_search_vectors"
down_revision = "0021_rate_gcra"
branch_labels = None
depends_on = None

TABLES = ("message", "memory")


def upgrade() -> None:
    for table in TABLES:  # on the partitioned message table this reaches every partition, and future ones
        op.execute(f"ALTER TABLE {table} ALTER COLUMN search_tsv SET STORAGE MAIN")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN search_tsv SET STORAGE EXTENDED")

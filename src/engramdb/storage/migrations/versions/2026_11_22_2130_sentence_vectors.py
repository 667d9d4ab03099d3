"""Sentence vectors for messages.

A chat turn often carries several things at once ("Congrats! I started a yoga class last week. How is
the shelter?"), and one vector for the whole turn blurs them. Each sentence of a multi-sentence message
is embedded on its own; ``embedding`` becomes the normalized mean of those vectors and
``sentence_embeddings`` keeps them, so a search scores the message by its best sentence. NULL for a
single-sentence message (its ``embedding`` is that sentence). Kept out of line, uncompressed: floats do
not compress, and only scans that score a message's sentences read them. See docs/decisions/0003.

Revision ID: 0003_sentence_vectors
Revises: 0002_search
Create Date: 2026-11-22 21:30
"""

from __future__ import annotations

from alembic import op

revision = "0003_sentence_vectors"
down_revision = "0002_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE message ADD COLUMN sentence_embeddings vector[]")
    op.execute("ALTER TABLE message ALTER COLUMN sentence_embeddings SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE message DROP COLUMN sentence_embeddings")

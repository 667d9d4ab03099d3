"""Part vectors for messages: each sentence, and the turn in its context.

A chat turn often carries several things at once ("Congrats! I started a yoga class last week. How is
the shelter?"), and one vector for the whole turn blurs them; a short reply ("Yes, last Tuesday!") means
little without the turn it answers. So a message's parts are embedded on their own: each sentence of a
multi-sentence message, and the message together with the previous turn of its session.
``embedding`` becomes the normalized mean of the sentences' vectors; ``part_embeddings`` keeps the parts,
and a search scores the message by its best part. NULL for a single-sentence first message. Kept out of
line, uncompressed: floats do not compress, and only scans that score a message's parts read them. See
docs/decisions/0003.

Revision ID: 0003_part_vectors
Revises: 0002_search
Create Date: 2026-11-22 21:30
"""

from __future__ import annotations

from alembic import op

revision = "0003_part_vectors"
down_revision = "0002_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE message ADD COLUMN part_embeddings vector[]")
    op.execute("ALTER TABLE message ALTER COLUMN part_embeddings SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE message DROP COLUMN part_embeddings")

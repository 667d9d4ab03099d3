"""Part vectors for messages: each sentence, and the turn in its context.

A chat turn often carries several things at once ("Congrats! I started a yoga class last week. How is
the shelter?"), and one vector for the whole turn blurs them; a short reply ("Yes, last Tuesday!") means
little without the turn it answers. So a message's parts are embedded on their own: each sentence of a
multi-sentence message, and the message together with the previous turn of its session.
``embedding`` becomes the normalized mean of the sentences' vectors; ``part_embeddings`` keeps the
sentences' (NULL for a message of one sentence), kept out of line and uncompressed: floats do not
compress, and only the vector scan reads them (inline, they made every row ~7 KB and slowed the keyword
scan). ``context_embedding`` is the message after the previous turn (NULL for a session's first), inline.
A search scores the message by the best of them. See docs/decisions/0003.

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


# Row-level security keeps a filter that is not leakproof out of index scans (it must wait for the
# policy), so the full-text match ``@@`` could never use its GIN index in tenant queries: a keyword search
# over a large organization read every row of it. ``ts_match_vq`` returns a boolean and raises nothing
# that depends on the row's text, so where the migrating role may (a superuser, as with the embedded
# server), it is declared leakproof. Elsewhere keyword search still works, scanning the scope's rows.
_LEAKPROOF = """
DO $$ BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    ALTER FUNCTION pg_catalog.ts_match_vq(tsvector, tsquery) {};
  END IF;
END $$"""


def upgrade() -> None:
    op.execute("ALTER TABLE message ADD COLUMN part_embeddings vector[]")
    op.execute("ALTER TABLE message ALTER COLUMN part_embeddings SET STORAGE EXTERNAL")
    op.execute("ALTER TABLE message ADD COLUMN context_embedding vector")
    op.execute("ALTER TABLE message ALTER COLUMN context_embedding SET STORAGE PLAIN")
    op.execute(_LEAKPROOF.format("LEAKPROOF"))


def downgrade() -> None:
    op.execute(_LEAKPROOF.format("NOT LEAKPROOF"))
    op.execute("ALTER TABLE message DROP COLUMN context_embedding, DROP COLUMN part_embeddings")

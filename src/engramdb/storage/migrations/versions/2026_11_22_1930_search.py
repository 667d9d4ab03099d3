"""Search: embeddings and full-text columns on messages and memories, and the memory access log.

Vectors live in an untyped ``vector`` column next to the ``embedding_model`` that made them; the HNSW
index for the configured model is a partial expression index created at start-up
(``engramdb.storage.vectors.ensure_vector_indexes``), so a model change never mixes vector spaces and
needs no migration. ``search_tsv`` is generated from the row's own text-search configuration.

Revision ID: 0002_search
Revises: 0001_foundation
Create Date: 2026-11-22 19:30
"""

from __future__ import annotations

from alembic import op

revision = "0002_search"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

DDL = r"""
ALTER TABLE message
  ADD COLUMN embedding vector,
  ADD COLUMN embedding_model text,
  ADD COLUMN language regconfig NOT NULL DEFAULT 'english',
  ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
    to_tsvector(language, coalesce(name, '') || ' ' || content)) STORED;
CREATE INDEX ix_message_search ON message USING gin (search_tsv);
-- Rows still waiting for a vector (deferred embedding): what the background backfill looks for.
CREATE INDEX ix_message_unembedded ON message (org_id, id) WHERE embedding_model IS NULL;
CREATE INDEX ix_memory_unembedded ON memory (org_id, id) WHERE embedding_model IS NULL;
-- Keep vectors inline: a TOASTed vector costs extra page reads for every row an exact scan touches.
ALTER TABLE message ALTER COLUMN embedding SET STORAGE PLAIN;
ALTER TABLE memory ALTER COLUMN embedding SET STORAGE PLAIN;

ALTER TABLE memory
  ADD COLUMN language regconfig NOT NULL DEFAULT 'english',
  ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (to_tsvector(language, content)) STORED;
CREATE INDEX ix_memory_search ON memory USING gin (search_tsv);

CREATE TABLE memory_access_log (
  org_id      uuid NOT NULL,
  id          uuid NOT NULL,
  memory_id   uuid NOT NULL,
  access_type text NOT NULL,
  key_id      uuid,
  request_id  text,
  score       real,
  accessed_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_memory_access_log PRIMARY KEY (org_id, id, accessed_at),
  CONSTRAINT ck_memory_access_log_type CHECK (access_type IN ('search', 'read', 'context'))
) PARTITION BY RANGE (accessed_at);
CREATE TABLE memory_access_log_default PARTITION OF memory_access_log DEFAULT;
CREATE INDEX ix_memory_access_log_memory ON memory_access_log (org_id, memory_id, accessed_at);

ALTER TABLE memory_access_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON memory_access_log
  USING (org_id = engram_current_org()) WITH CHECK (org_id = engram_current_org());
GRANT SELECT, INSERT, UPDATE, DELETE ON memory_access_log TO engram_app;
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS memory_access_log CASCADE")
    op.execute("DROP INDEX IF EXISTS ix_memory_unembedded")
    op.execute("ALTER TABLE memory DROP COLUMN search_tsv, DROP COLUMN language")
    op.execute(
        "ALTER TABLE message DROP COLUMN search_tsv, DROP COLUMN language, "
        "DROP COLUMN embedding_model, DROP COLUMN embedding"
    )

"""Documents and repositories: text kept whole, cut into chunks that are embedded and searched.

* ``repository`` is a named collection of documents with paths (a folder or a git working tree synced by
  ``engramdb ingest``); ``document`` holds one file or one posted text, with its content hash (identical
  content is stored once per repository path, and once per owner outside repositories);
  ``chunk`` holds the pieces search reads, each with where it sits (heading path, line range, page) and
  its own content hash, so a re-ingest re-embeds only chunks that changed.
* Chunks carry their document's owner and repository (copied, as messages carry their session's) so the
  vector and keyword retrievers filter without a join.

Revision ID: 0005_documents
Revises: 0004_intelligence
Create Date: 2026-11-23 00:30
"""

from __future__ import annotations

from alembic import op

revision = "0005_documents"
down_revision = "0004_intelligence"
branch_labels = None
depends_on = None

NEW_TABLES = ("repository", "document", "chunk")

DDL = r"""
CREATE TABLE repository (
  org_id          uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id              uuid NOT NULL,
  name            text NOT NULL,
  description     text,
  source          text,
  user_id         uuid,
  agent_id        uuid,
  app_id          uuid,
  tags            text[] NOT NULL DEFAULT '{}',
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  document_count  integer NOT NULL DEFAULT 0,
  last_synced_at  timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_repository PRIMARY KEY (org_id, id),
  CONSTRAINT uq_repository_name UNIQUE (org_id, name),
  CONSTRAINT fk_repository_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_repository_agent FOREIGN KEY (org_id, agent_id) REFERENCES agent (org_id, id),
  CONSTRAINT fk_repository_app FOREIGN KEY (org_id, app_id) REFERENCES app (org_id, id)
);
CREATE INDEX ix_repository_tags ON repository USING gin (tags);

CREATE TABLE document (
  org_id         uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id             uuid NOT NULL,
  repository_id  uuid,
  path           text,
  title          text,
  content_type   text NOT NULL,
  code_language  text,
  source_url     text,
  user_id        uuid,
  agent_id       uuid,
  app_id         uuid,
  tags           text[] NOT NULL DEFAULT '{}',
  metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
  content        text NOT NULL,
  content_hash   bytea NOT NULL,
  size_bytes     integer NOT NULL,
  chunk_count    integer NOT NULL DEFAULT 0,
  page_count     integer,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_document PRIMARY KEY (org_id, id),
  CONSTRAINT fk_document_repository FOREIGN KEY (org_id, repository_id)
    REFERENCES repository (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_document_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_document_agent FOREIGN KEY (org_id, agent_id) REFERENCES agent (org_id, id),
  CONSTRAINT fk_document_app FOREIGN KEY (org_id, app_id) REFERENCES app (org_id, id),
  CONSTRAINT ck_document_path CHECK ((repository_id IS NULL) OR (path IS NOT NULL))
);
CREATE UNIQUE INDEX ux_document_path ON document (org_id, repository_id, path) WHERE repository_id IS NOT NULL;
CREATE UNIQUE INDEX ux_document_content ON document (
  org_id,
  coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid),
  coalesce(agent_id, '00000000-0000-0000-0000-000000000000'::uuid),
  coalesce(app_id, '00000000-0000-0000-0000-000000000000'::uuid),
  content_hash
) WHERE repository_id IS NULL;
CREATE INDEX ix_document_user ON document (org_id, user_id, id);
CREATE INDEX ix_document_repository ON document (org_id, repository_id, path);
CREATE INDEX ix_document_tags ON document USING gin (tags);
CREATE INDEX ix_document_metadata ON document USING gin (metadata jsonb_path_ops);

CREATE TABLE chunk (
  org_id          uuid NOT NULL,
  id              uuid NOT NULL,
  document_id     uuid NOT NULL,
  repository_id   uuid,
  user_id         uuid,
  agent_id        uuid,
  app_id          uuid,
  ordinal         integer NOT NULL,
  content         text NOT NULL,
  content_hash    bytea NOT NULL,
  heading_path    text[] NOT NULL DEFAULT '{}',
  heading         text NOT NULL DEFAULT '',
  start_line      integer,
  end_line        integer,
  page            integer,
  char_start      integer NOT NULL,
  char_end        integer NOT NULL,
  token_count     integer,
  embedding       vector,
  embedding_model text,
  language        regconfig NOT NULL DEFAULT 'english',
  search_tsv      tsvector GENERATED ALWAYS AS (to_tsvector(language, heading || ' ' || content)) STORED,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_chunk PRIMARY KEY (org_id, id),
  CONSTRAINT fk_chunk_document FOREIGN KEY (org_id, document_id) REFERENCES document (org_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_chunk_document ON chunk (org_id, document_id, ordinal);
CREATE INDEX ix_chunk_user ON chunk (org_id, user_id);
CREATE INDEX ix_chunk_repository ON chunk (org_id, repository_id);
CREATE INDEX ix_chunk_search ON chunk USING gin (search_tsv);
CREATE INDEX ix_chunk_unembedded ON chunk (org_id, id) WHERE embedding_model IS NULL;
ALTER TABLE chunk ALTER COLUMN embedding SET STORAGE PLAIN;
"""


def upgrade() -> None:
    op.execute(DDL)
    for table in NEW_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (org_id = engram_current_org()) WITH CHECK (org_id = engram_current_org())"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO engram_app")


def downgrade() -> None:
    for table in reversed(NEW_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")

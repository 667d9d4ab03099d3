"""Offloaded contexts: what an agent moves out of its window, kept compressed and found again by search.

* ``offloaded_context`` (the seed's ``offloaded_contexts``) holds one blob (a transcript, a scratchpad,
  tool output, a file) as one zstandard frame in ``data``, with its sizes before and after compression
  and their ratio, its media type and the SHA-256 of the bytes as received. It may belong to a team,
  user, agent or app (as sessions do), to a session and to a task. It goes with its user, agent, session
  or task (the references cascade); a deleted team or app leaves it in none, as it leaves sessions (the
  service clears ``team_id`` and ``app_id`` first).
* ``summary`` is its representative text (an extractive summary, or the LLM's): what is embedded and
  what search shows. ``search_tsv`` is written by the service from the title, the summary and the start of
  the text (not generated: the text itself is stored only compressed).
* Identical content is stored once per scope: a unique index over the scope's columns and the hash.
* ``data`` is stored EXTERNAL: it is already compressed, so PostgreSQL's own TOAST compression would
  only spend time failing to shrink it. The HNSW index of the configured model is made at start-up, as
  for messages, memories and chunks (``storage/vectors.py``).

Revision ID: 0018_offloaded_contexts
Revises: 0017_erasure_receipts
Create Date: 2026-12-05 15:00
"""

from __future__ import annotations

from alembic import op

revision = "0018_offloaded_contexts"
down_revision = "0017_erasure_receipts"
branch_labels = None
depends_on = None

DDL = r"""
CREATE TABLE offloaded_context (
  org_id             uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                 uuid NOT NULL,
  team_id            uuid,
  user_id            uuid,
  agent_id           uuid,
  app_id             uuid,
  session_id         uuid,
  task_id            uuid,
  title              text,
  filename           text,
  content_type       text NOT NULL,
  tags               text[] NOT NULL DEFAULT '{}',
  metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
  data               bytea NOT NULL,
  compression        text NOT NULL DEFAULT 'zstd',
  compression_level  integer NOT NULL,
  original_bytes     bigint NOT NULL,
  stored_bytes       bigint NOT NULL,
  compression_ratio  real NOT NULL,
  content_sha256     bytea NOT NULL,
  is_text            boolean NOT NULL,
  summary            text NOT NULL,
  summary_source     text NOT NULL,
  embedding          vector,
  embedding_model    text,
  language           regconfig NOT NULL DEFAULT 'english',
  search_tsv         tsvector,
  expires_at         timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_offloaded_context PRIMARY KEY (org_id, id),
  CONSTRAINT fk_offloaded_context_team FOREIGN KEY (org_id, team_id) REFERENCES team (org_id, id),
  CONSTRAINT fk_offloaded_context_user FOREIGN KEY (org_id, user_id)
    REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_offloaded_context_agent FOREIGN KEY (org_id, agent_id)
    REFERENCES agent (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_offloaded_context_app FOREIGN KEY (org_id, app_id) REFERENCES app (org_id, id),
  CONSTRAINT fk_offloaded_context_session FOREIGN KEY (org_id, session_id)
    REFERENCES session (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_offloaded_context_task FOREIGN KEY (org_id, task_id) REFERENCES task (org_id, id) ON DELETE CASCADE,
  CONSTRAINT ck_offloaded_context_compression CHECK (compression IN ('zstd')),
  CONSTRAINT ck_offloaded_context_sizes CHECK (original_bytes >= 0 AND stored_bytes > 0),
  CONSTRAINT ck_offloaded_context_summary_source CHECK (summary_source IN ('extractive', 'llm', 'described'))
);
CREATE UNIQUE INDEX ux_offloaded_context_content ON offloaded_context (
  org_id,
  coalesce(team_id, '00000000-0000-0000-0000-000000000000'::uuid),
  coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid),
  coalesce(agent_id, '00000000-0000-0000-0000-000000000000'::uuid),
  coalesce(app_id, '00000000-0000-0000-0000-000000000000'::uuid),
  coalesce(session_id, '00000000-0000-0000-0000-000000000000'::uuid),
  coalesce(task_id, '00000000-0000-0000-0000-000000000000'::uuid),
  content_sha256
);
CREATE INDEX ix_offloaded_context_user ON offloaded_context (org_id, user_id, id);
CREATE INDEX ix_offloaded_context_agent ON offloaded_context (org_id, agent_id, id);
CREATE INDEX ix_offloaded_context_team ON offloaded_context (org_id, team_id);
CREATE INDEX ix_offloaded_context_app ON offloaded_context (org_id, app_id);
CREATE INDEX ix_offloaded_context_session ON offloaded_context (org_id, session_id, id);
CREATE INDEX ix_offloaded_context_task ON offloaded_context (org_id, task_id, id);
CREATE INDEX ix_offloaded_context_expires ON offloaded_context (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX ix_offloaded_context_tags ON offloaded_context USING gin (tags);
CREATE INDEX ix_offloaded_context_metadata ON offloaded_context USING gin (metadata jsonb_path_ops);
CREATE INDEX ix_offloaded_context_search ON offloaded_context USING gin (search_tsv);
CREATE INDEX ix_offloaded_context_unembedded ON offloaded_context (org_id, id) WHERE embedding_model IS NULL;
ALTER TABLE offloaded_context ALTER COLUMN embedding SET STORAGE PLAIN;
ALTER TABLE offloaded_context ALTER COLUMN data SET STORAGE EXTERNAL;
"""


def upgrade() -> None:
    op.execute(DDL)
    op.execute("ALTER TABLE offloaded_context ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON offloaded_context "
        "USING (org_id = engram_current_org()) WITH CHECK (org_id = engram_current_org())"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON offloaded_context TO engram_app")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS offloaded_context CASCADE")

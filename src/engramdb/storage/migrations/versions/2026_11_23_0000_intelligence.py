"""Memory intelligence: the job queue, facts, entities, summaries, narratives and categories.

* The job queue is procrastinate's schema, applied into its own PostgreSQL schema ``procrastinate`` (not
  tenant data: a queue row holds only ids). The tenant role may defer jobs (insert) in the same
  transaction as the write that needs them, so an acknowledged write never lacks its job; it cannot read
  the queue. What tenants see of their work is the ``job`` table, org-scoped like everything else.
* ``fact`` rows are versions: a change never updates a belief in place. ``valid_from`` / ``valid_until``
  are event time (when it was true); ``recorded_at`` / ``superseded_at`` system time (when Engram
  believed it). ``subject_id`` / ``object_id`` are entities, so facts whose object is an entity are the
  graph's edges.
* ``entity`` names are unique per owner (a user, or the org when ``user_id`` is NULL) by normalized name.

See docs/decisions/0004-jobs-facts-graph.md.

Revision ID: 0004_intelligence
Revises: 0003_part_vectors
Create Date: 2026-11-23 00:00
"""

from __future__ import annotations

from importlib import resources

from alembic import op

revision = "0004_intelligence"
down_revision = "0003_part_vectors"
branch_labels = None
depends_on = None

NEW_TABLES = ("job", "entity", "fact", "memory_entity", "category", "user_narrative")

DDL = r"""
CREATE TABLE job (
  org_id            uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                uuid NOT NULL,
  kind              text NOT NULL,
  status            text NOT NULL DEFAULT 'queued',
  session_id        uuid,
  user_id           uuid,
  attempts          integer NOT NULL DEFAULT 0,
  max_attempts      integer NOT NULL,
  error             text,
  result            jsonb NOT NULL DEFAULT '{}'::jsonb,
  provider          text,
  prompt_tokens     integer NOT NULL DEFAULT 0,
  completion_tokens integer NOT NULL DEFAULT 0,
  llm_calls         integer NOT NULL DEFAULT 0,
  queue_job_id      bigint,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_job PRIMARY KEY (org_id, id),
  CONSTRAINT ck_job_status CHECK (status IN ('queued', 'running', 'succeeded', 'failed'))
);
CREATE INDEX ix_job_created ON job (org_id, created_at DESC, id);
CREATE INDEX ix_job_session ON job (org_id, session_id, created_at);
CREATE INDEX ix_job_unfinished ON job (org_id, id) WHERE status IN ('queued', 'running');

ALTER TABLE session
  ADD COLUMN extracted_seq bigint NOT NULL DEFAULT 0,
  ADD COLUMN summary text,
  ADD COLUMN summary_seq bigint NOT NULL DEFAULT 0,
  ADD COLUMN summary_updated_at timestamptz;

ALTER TABLE memory
  ADD COLUMN speaker text,
  ADD COLUMN occurred_at timestamptz,
  ADD COLUMN extractor text;

CREATE TABLE entity (
  org_id          uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id              uuid NOT NULL,
  user_id         uuid,
  name            text NOT NULL,
  normalized_name text NOT NULL,
  entity_type     text NOT NULL DEFAULT 'other',
  aliases         text[] NOT NULL DEFAULT '{}',
  alias_keys      text[] NOT NULL DEFAULT '{}',
  alias_text      text NOT NULL DEFAULT '',
  summary         text,
  mention_count   integer NOT NULL DEFAULT 1,
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  embedding       vector,
  embedding_model text,
  merged_into     uuid,
  language        regconfig NOT NULL DEFAULT 'english',
  search_tsv      tsvector GENERATED ALWAYS AS (
    to_tsvector(language, name || ' ' || alias_text)) STORED,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_entity PRIMARY KEY (org_id, id),
  CONSTRAINT fk_entity_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT ck_entity_type CHECK (
    entity_type IN ('person', 'place', 'organization', 'event', 'object', 'concept', 'other'))
);
CREATE UNIQUE INDEX ux_entity_name ON entity
  (org_id, coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid), normalized_name)
  WHERE merged_into IS NULL;
CREATE INDEX ix_entity_alias_keys ON entity USING gin (alias_keys);
CREATE INDEX ix_entity_search ON entity USING gin (search_tsv);
CREATE INDEX ix_entity_user ON entity (org_id, user_id, id);

CREATE TABLE fact (
  org_id             uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                 uuid NOT NULL,
  user_id            uuid,
  agent_id           uuid,
  session_id         uuid,
  subject_id         uuid NOT NULL,
  object_id          uuid,
  subject            text NOT NULL,
  predicate          text NOT NULL,
  object             text NOT NULL,
  statement          text NOT NULL,
  confidence         real NOT NULL DEFAULT 0.8,
  single_valued      boolean NOT NULL DEFAULT false,
  weight             real NOT NULL DEFAULT 1,
  valid_from         timestamptz,
  valid_until        timestamptz,
  recorded_at        timestamptz NOT NULL DEFAULT now(),
  superseded_at      timestamptz,
  replaces_id        uuid,
  invalidated_by     uuid,
  source             text NOT NULL DEFAULT 'api',
  extractor          text,
  speaker            text,
  source_message_ids uuid[] NOT NULL DEFAULT '{}',
  metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
  embedding          vector,
  embedding_model    text,
  language           regconfig NOT NULL DEFAULT 'english',
  search_tsv         tsvector GENERATED ALWAYS AS (to_tsvector(language, statement)) STORED,
  CONSTRAINT pk_fact PRIMARY KEY (org_id, id),
  CONSTRAINT fk_fact_subject FOREIGN KEY (org_id, subject_id) REFERENCES entity (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_fact_object FOREIGN KEY (org_id, object_id) REFERENCES entity (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_fact_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT ck_fact_confidence CHECK (confidence >= 0 AND confidence <= 1),
  CONSTRAINT ck_fact_validity CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from),
  CONSTRAINT ck_fact_source CHECK (source IN ('api', 'extraction'))
);
CREATE INDEX ix_fact_subject ON fact (org_id, subject_id, predicate) WHERE superseded_at IS NULL;
CREATE INDEX ix_fact_object ON fact (org_id, object_id) WHERE superseded_at IS NULL AND object_id IS NOT NULL;
CREATE INDEX ix_fact_subject_history ON fact (org_id, subject_id, recorded_at);
CREATE INDEX ix_fact_user ON fact (org_id, user_id, recorded_at);
CREATE INDEX ix_fact_search ON fact USING gin (search_tsv);
ALTER TABLE fact ALTER COLUMN embedding SET STORAGE PLAIN;

CREATE TABLE memory_entity (
  org_id    uuid NOT NULL,
  memory_id uuid NOT NULL,
  entity_id uuid NOT NULL,
  CONSTRAINT pk_memory_entity PRIMARY KEY (org_id, memory_id, entity_id),
  CONSTRAINT fk_memory_entity_memory FOREIGN KEY (org_id, memory_id) REFERENCES memory (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_memory_entity_entity FOREIGN KEY (org_id, entity_id) REFERENCES entity (org_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_memory_entity_entity ON memory_entity (org_id, entity_id);

CREATE TABLE category (
  org_id      uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id          uuid NOT NULL,
  name        text NOT NULL,
  description text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_category PRIMARY KEY (org_id, id),
  CONSTRAINT uq_category_name UNIQUE (org_id, name)
);

CREATE TABLE user_narrative (
  org_id       uuid NOT NULL,
  id           uuid NOT NULL,
  user_id      uuid NOT NULL,
  version      integer NOT NULL,
  content      text NOT NULL,
  provider     text NOT NULL,
  memory_count integer NOT NULL DEFAULT 0,
  fact_count   integer NOT NULL DEFAULT 0,
  created_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_user_narrative PRIMARY KEY (org_id, id),
  CONSTRAINT uq_user_narrative_version UNIQUE (org_id, user_id, version),
  CONSTRAINT fk_user_narrative_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE
);
"""

QUEUE_GRANTS = r"""
GRANT USAGE ON SCHEMA procrastinate TO engram_app;
GRANT EXECUTE ON FUNCTION procrastinate.procrastinate_defer_jobs_v1(procrastinate.procrastinate_job_to_defer_v1[])
  TO engram_app;
GRANT INSERT ON procrastinate.procrastinate_jobs, procrastinate.procrastinate_events TO engram_app;
GRANT SELECT (id) ON procrastinate.procrastinate_jobs TO engram_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA procrastinate TO engram_app;
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
    # procrastinate's own schema file, as shipped in the installed (pinned) package, into its own schema.
    schema_sql = (resources.files("procrastinate.sql") / "schema.sql").read_text()
    op.execute("CREATE SCHEMA procrastinate")
    op.execute("SET LOCAL search_path TO procrastinate, public")
    op.get_bind().exec_driver_sql(schema_sql.replace("%", "%%"))
    op.execute("SET LOCAL search_path TO public")
    op.execute(QUEUE_GRANTS)


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS procrastinate CASCADE")
    for table in reversed(NEW_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("ALTER TABLE memory DROP COLUMN speaker, DROP COLUMN occurred_at, DROP COLUMN extractor")
    op.execute(
        "ALTER TABLE session DROP COLUMN extracted_seq, DROP COLUMN summary, DROP COLUMN summary_seq, "
        "DROP COLUMN summary_updated_at"
    )

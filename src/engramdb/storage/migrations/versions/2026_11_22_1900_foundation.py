"""Foundation: tenancy, API keys, sessions, messages, memories, history, audit.

Rules kept by every table here (and checked by tests/storage/test_schema_rules.py):
* ``org_id`` is a column of every tenant table and part of every primary key, unique constraint and
  foreign key, so the schema can be distributed by ``org_id`` (Citus) and no key can point across orgs;
* row-level security is enabled with a policy on ``org_id = engram_current_org()``; the service runs
  tenant transactions as ``engram_app``, a role that neither owns the tables nor bypasses RLS.
``message`` and ``audit_log`` are range-partitioned by ``created_at`` (monthly, plus a default part);
foreign keys *into* them are not declared (they would need the partition key), the service checks them.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-22 19:00
"""

from __future__ import annotations

from alembic import op

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = (
    "organization",
    "team",
    "user_account",
    "agent",
    "app",
    "api_key",
    "session",
    "message",
    "memory",
    "memory_history",
    "audit_log",
)

DDL = r"""
CREATE EXTENSION IF NOT EXISTS vector;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'engram_app') THEN
    CREATE ROLE engram_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END $$;

CREATE FUNCTION engram_current_org() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $f$ SELECT NULLIF(current_setting('engram.org_id', true), '')::uuid $f$;

CREATE TABLE organization (
  org_id      uuid PRIMARY KEY,
  name        text NOT NULL,
  metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_organization_name ON organization (name);

CREATE TABLE team (
  org_id      uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id          uuid NOT NULL,
  name        text NOT NULL,
  description text,
  metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_team PRIMARY KEY (org_id, id),
  CONSTRAINT uq_team_name UNIQUE (org_id, name)
);

CREATE TABLE user_account (
  org_id       uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id           uuid NOT NULL,
  external_id  text,
  team_id      uuid,
  display_name text,
  email        text,
  metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_user_account PRIMARY KEY (org_id, id),
  CONSTRAINT uq_user_account_external_id UNIQUE (org_id, external_id),
  CONSTRAINT fk_user_account_team FOREIGN KEY (org_id, team_id) REFERENCES team (org_id, id)
);

CREATE TABLE agent (
  org_id      uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id          uuid NOT NULL,
  name        text NOT NULL,
  description text,
  team_id     uuid,
  user_id     uuid,
  metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_agent PRIMARY KEY (org_id, id),
  CONSTRAINT uq_agent_name UNIQUE (org_id, name),
  CONSTRAINT fk_agent_team FOREIGN KEY (org_id, team_id) REFERENCES team (org_id, id),
  CONSTRAINT fk_agent_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id)
);

CREATE TABLE app (
  org_id      uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id          uuid NOT NULL,
  name        text NOT NULL,
  description text,
  is_active   boolean NOT NULL DEFAULT true,
  metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_app PRIMARY KEY (org_id, id),
  CONSTRAINT uq_app_name UNIQUE (org_id, name)
);

CREATE TABLE api_key (
  org_id       uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id           uuid NOT NULL,
  name         text NOT NULL,
  prefix       text NOT NULL,
  secret_hash  text NOT NULL,
  scopes       text[] NOT NULL,
  team_id      uuid,
  user_id      uuid,
  agent_id     uuid,
  expires_at   timestamptz,
  revoked_at   timestamptz,
  last_used_at timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_api_key PRIMARY KEY (org_id, id),
  CONSTRAINT uq_api_key_prefix UNIQUE (org_id, prefix),
  CONSTRAINT fk_api_key_team FOREIGN KEY (org_id, team_id) REFERENCES team (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_api_key_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_api_key_agent FOREIGN KEY (org_id, agent_id) REFERENCES agent (org_id, id) ON DELETE CASCADE,
  CONSTRAINT ck_api_key_scopes CHECK (scopes <@ ARRAY['read', 'write', 'admin']::text[] AND cardinality(scopes) > 0)
);
-- Key lookup happens before the org is known; prefixes are random, so a plain index suffices.
CREATE INDEX ix_api_key_prefix ON api_key (prefix);

CREATE TABLE session (
  org_id          uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id              uuid NOT NULL,
  team_id         uuid,
  user_id         uuid,
  agent_id        uuid,
  app_id          uuid,
  title           text,
  status          text NOT NULL DEFAULT 'active',
  tags            text[] NOT NULL DEFAULT '{}',
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  message_count   integer NOT NULL DEFAULT 0,
  last_seq        bigint NOT NULL DEFAULT 0,
  last_message_at timestamptz,
  closed_at       timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_session PRIMARY KEY (org_id, id),
  CONSTRAINT fk_session_team FOREIGN KEY (org_id, team_id) REFERENCES team (org_id, id),
  CONSTRAINT fk_session_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_session_agent FOREIGN KEY (org_id, agent_id) REFERENCES agent (org_id, id),
  CONSTRAINT fk_session_app FOREIGN KEY (org_id, app_id) REFERENCES app (org_id, id),
  CONSTRAINT ck_session_status CHECK (status IN ('active', 'closed'))
);
CREATE INDEX ix_session_user ON session (org_id, user_id, id);
CREATE INDEX ix_session_agent ON session (org_id, agent_id, id);

CREATE TABLE message (
  org_id       uuid NOT NULL,
  id           uuid NOT NULL,
  session_id   uuid NOT NULL,
  seq          bigint NOT NULL,
  parent_id    uuid,
  team_id      uuid,
  user_id      uuid,
  agent_id     uuid,
  app_id       uuid,
  role         text NOT NULL,
  name         text,
  content      text NOT NULL,
  channel      text,
  tags         text[] NOT NULL DEFAULT '{}',
  metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
  content_hash bytea NOT NULL,
  occurred_at  timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_message PRIMARY KEY (org_id, id, created_at),
  CONSTRAINT fk_message_session FOREIGN KEY (org_id, session_id) REFERENCES session (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_message_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT ck_message_role CHECK (role IN ('user', 'assistant', 'system', 'tool'))
) PARTITION BY RANGE (created_at);
CREATE TABLE message_default PARTITION OF message DEFAULT;
CREATE INDEX ix_message_session_time ON message (org_id, session_id, occurred_at, seq);
CREATE INDEX ix_message_session_seq ON message (org_id, session_id, seq);
CREATE INDEX ix_message_user_time ON message (org_id, user_id, occurred_at);
CREATE INDEX ix_message_tags ON message USING gin (tags);
CREATE INDEX ix_message_metadata ON message USING gin (metadata jsonb_path_ops);

CREATE TABLE memory (
  org_id             uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                 uuid NOT NULL,
  team_id            uuid,
  user_id            uuid,
  agent_id           uuid,
  app_id             uuid,
  session_id         uuid,
  content            text NOT NULL,
  memory_type        text NOT NULL DEFAULT 'fact',
  state              text NOT NULL DEFAULT 'active',
  importance         real NOT NULL DEFAULT 0.5,
  access_count       integer NOT NULL DEFAULT 0,
  last_accessed_at   timestamptz,
  tags               text[] NOT NULL DEFAULT '{}',
  categories         text[] NOT NULL DEFAULT '{}',
  metadata           jsonb NOT NULL DEFAULT '{}'::jsonb,
  source             text NOT NULL DEFAULT 'api',
  source_message_ids uuid[] NOT NULL DEFAULT '{}',
  content_hash       bytea NOT NULL,
  embedding          vector,
  embedding_model    text,
  version            integer NOT NULL DEFAULT 1,
  expires_at         timestamptz,
  archived_at        timestamptz,
  deleted_at         timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_memory PRIMARY KEY (org_id, id),
  CONSTRAINT fk_memory_team FOREIGN KEY (org_id, team_id) REFERENCES team (org_id, id),
  CONSTRAINT fk_memory_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_memory_agent FOREIGN KEY (org_id, agent_id) REFERENCES agent (org_id, id),
  CONSTRAINT fk_memory_app FOREIGN KEY (org_id, app_id) REFERENCES app (org_id, id),
  CONSTRAINT fk_memory_session FOREIGN KEY (org_id, session_id) REFERENCES session (org_id, id),
  CONSTRAINT ck_memory_type CHECK (memory_type IN ('fact', 'preference', 'task', 'procedural', 'episodic')),
  CONSTRAINT ck_memory_state CHECK (state IN ('active', 'paused', 'archived', 'deleted')),
  CONSTRAINT ck_memory_importance CHECK (importance >= 0 AND importance <= 1)
);
CREATE INDEX ix_memory_user_state ON memory (org_id, user_id, state, id);
CREATE INDEX ix_memory_agent_state ON memory (org_id, agent_id, state, id);
CREATE INDEX ix_memory_session ON memory (org_id, session_id);
CREATE INDEX ix_memory_tags ON memory USING gin (tags);
CREATE INDEX ix_memory_categories ON memory USING gin (categories);
CREATE INDEX ix_memory_metadata ON memory USING gin (metadata jsonb_path_ops);

CREATE TABLE memory_history (
  org_id      uuid NOT NULL,
  id          uuid NOT NULL,
  memory_id   uuid NOT NULL,
  version     integer NOT NULL,
  action      text NOT NULL,
  old_values  jsonb,
  new_values  jsonb,
  actor_key_id uuid,
  actor       text NOT NULL,
  request_id  text,
  changed_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_memory_history PRIMARY KEY (org_id, id),
  CONSTRAINT fk_memory_history_memory FOREIGN KEY (org_id, memory_id) REFERENCES memory (org_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_memory_history_memory ON memory_history (org_id, memory_id, version);

CREATE TABLE audit_log (
  org_id      uuid NOT NULL,
  id          uuid NOT NULL,
  key_id      uuid,
  actor       text NOT NULL,
  action      text NOT NULL,
  entity_type text NOT NULL,
  entity_id   uuid,
  request_id  text,
  client_addr text,
  details     jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_audit_log PRIMARY KEY (org_id, id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;
CREATE INDEX ix_audit_log_entity ON audit_log (org_id, entity_type, entity_id);
CREATE INDEX ix_audit_log_id ON audit_log (org_id, id);
"""


def upgrade() -> None:
    op.execute(DDL)
    for table in TENANT_TABLES:
        column = "org_id"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({column} = engram_current_org()) WITH CHECK ({column} = engram_current_org())"
        )
    op.execute("GRANT USAGE ON SCHEMA public TO engram_app")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO engram_app")
    op.execute("REVOKE ALL ON alembic_version FROM engram_app")
    # Partitions are reached only through their parent, whose policy applies; RLS does not carry over
    # to a partition queried directly, so the tenant role gets no rights on any partition.
    op.execute("REVOKE ALL ON message_default, audit_log_default FROM engram_app")
    # The migrating role must be able to SET ROLE engram_app (a superuser can already).
    op.execute(
        "DO $$ BEGIN IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
        "THEN EXECUTE format('GRANT engram_app TO %I', current_user); END IF; END $$"
    )


def downgrade() -> None:
    for table in reversed(TENANT_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS engram_current_org()")

"""Retention: an organization's retention policies, legal holds and the reports of retention runs; sessions
that expire.

* ``retention_policy``: what to archive or delete, and after how long. ``target`` names the rows
  (``memories``, ``messages``, ``sessions``, ``documents``, ``audit_log``, ``access_log``, ``jobs``,
  ``webhook_deliveries``); ``action`` is ``delete``, or ``archive`` where the table has an archived state
  (memories only); ``basis`` is ``age`` (since the row was stored) or ``idle`` (since a memory was last
  read, a session last spoken in); ``keep_latest`` keeps the newest N rows per user whatever their age.
  The narrowing columns (app, team, user, memory type and state) are null for "all". A policy narrowed to
  an app, team or user goes with it: widened to the whole organization it would delete what nobody meant.
  The checks hold the combinations the API refuses (an idle basis on messages, archiving messages).
* ``legal_hold``: while a hold is active (``released_at`` null) nothing of its user (or, with no user, of
  the whole organization) is deleted by retention, and the user cannot be erased. A released hold stays on
  record; it goes with its user should the user be erased afterwards.
* ``retention_run``: one report per run: the policy run (null: every policy and the expired rows),
  whether it was a dry run, rows per table and action (``counts``), each step's share (``steps``), and the
  error that stopped it, if one did.
* ``session.expires_at``: a session past it is hidden like an expired memory, and deleted by the sweep.
  Partial indexes find the expired memories and sessions without reading the others.

Revision ID: 0013_retention
Revises: 0012_predicates
Create Date: 2026-12-05 11:00
"""

from __future__ import annotations

from alembic import op

revision = "0013_retention"
down_revision = "0012_predicates"
branch_labels = None
depends_on = None

TABLES = ("retention_policy", "legal_hold", "retention_run")

DDL = r"""
CREATE TABLE retention_policy (
  org_id       uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id           uuid NOT NULL,
  name         text NOT NULL,
  target       text NOT NULL,
  action       text NOT NULL,
  basis        text NOT NULL DEFAULT 'age',
  after_days   integer NOT NULL,
  keep_latest  integer,
  app_id       uuid,
  team_id      uuid,
  user_id      uuid,
  memory_type  text,
  state        text,
  enabled      boolean NOT NULL DEFAULT true,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_retention_policy PRIMARY KEY (org_id, id),
  CONSTRAINT uq_retention_policy_name UNIQUE (org_id, name),
  CONSTRAINT fk_retention_policy_app FOREIGN KEY (org_id, app_id) REFERENCES app (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_retention_policy_team FOREIGN KEY (org_id, team_id) REFERENCES team (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_retention_policy_user FOREIGN KEY (org_id, user_id)
    REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT ck_retention_policy_target CHECK (target IN
    ('memories', 'messages', 'sessions', 'documents', 'audit_log', 'access_log', 'jobs', 'webhook_deliveries')),
  CONSTRAINT ck_retention_policy_action CHECK (action = 'delete' OR (action = 'archive' AND target = 'memories')),
  CONSTRAINT ck_retention_policy_basis CHECK (basis = 'age' OR (basis = 'idle' AND target IN ('memories', 'sessions'))),
  CONSTRAINT ck_retention_policy_after_days CHECK (after_days BETWEEN 0 AND 36500),
  CONSTRAINT ck_retention_policy_keep_latest CHECK (keep_latest IS NULL OR keep_latest >= 1),
  CONSTRAINT ck_retention_policy_memory_type CHECK (memory_type IS NULL OR (target = 'memories' AND memory_type IN
    ('fact', 'preference', 'task', 'procedural', 'episodic'))),
  CONSTRAINT ck_retention_policy_state CHECK (state IS NULL OR (target = 'memories' AND state IN
    ('active', 'paused', 'archived', 'deleted')))
);

CREATE TABLE legal_hold (
  org_id       uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id           uuid NOT NULL,
  user_id      uuid,
  reason       text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  released_at  timestamptz,
  CONSTRAINT pk_legal_hold PRIMARY KEY (org_id, id),
  CONSTRAINT fk_legal_hold_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_legal_hold_active ON legal_hold (org_id, user_id) WHERE released_at IS NULL;

CREATE TABLE retention_run (
  org_id       uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id           uuid NOT NULL,
  policy_id    uuid,
  trigger      text NOT NULL,
  dry_run      boolean NOT NULL,
  counts       jsonb NOT NULL DEFAULT '{}'::jsonb,
  steps        jsonb NOT NULL DEFAULT '[]'::jsonb,
  error        text,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  CONSTRAINT pk_retention_run PRIMARY KEY (org_id, id),
  CONSTRAINT ck_retention_run_trigger CHECK (trigger IN ('sweep', 'manual'))
);
CREATE INDEX ix_retention_run_policy ON retention_run (org_id, policy_id, id);

ALTER TABLE session ADD COLUMN expires_at timestamptz;
CREATE INDEX ix_session_expires ON session (org_id, expires_at, id) WHERE expires_at IS NOT NULL;
CREATE INDEX ix_memory_expires ON memory (org_id, expires_at, id) WHERE expires_at IS NOT NULL;
"""


def upgrade() -> None:
    op.execute(DDL)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (org_id = engram_current_org()) WITH CHECK (org_id = engram_current_org())"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO engram_app")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_memory_expires")
    op.execute("DROP INDEX IF EXISTS ix_session_expires")
    op.execute("ALTER TABLE session DROP COLUMN IF EXISTS expires_at")
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")

"""Agents at work: agent status and heartbeats, task queues with leases, mailboxes, the stream sequence.

* ``agent`` gains ``type``, ``status``, ``config``, ``metrics``, ``capabilities``, ``heartbeat_interval_s``
  and ``last_heartbeat_at``.
* ``task`` (the seed's ``tasks``): a unit of work on a named queue, claimed with a lease (``lease_id``,
  ``lease_expires_at``); ``task_dependency`` lists the tasks it waits for; ``task_event`` is its history,
  one row per state change.
* ``agent_message`` (the seed's ``agent_messages``): what an agent sends, to one agent, a team or the
  whole organization; range-partitioned by ``created_at`` like ``message``. ``agent_message_delivery`` is
  one row per recipient with its delivery state (``delivered_at``, ``acked_at``).
* ``stream_seq``: one counter per organization. Every task event and message takes its ``seq`` from it,
  so a live stream can resume after the last id it sent (``Last-Event-ID``). The counter row stays locked
  until the writing transaction commits, so an organization's events commit in ``seq`` order and a
  reader that saw ``seq`` n has seen every event before it.

Revision ID: 0009_agents
Revises: 0008_erasure
Create Date: 2026-12-04 09:00
"""

from __future__ import annotations

from alembic import op

revision = "0009_agents"
down_revision = "0008_erasure"
branch_labels = None
depends_on = None

NEW_TABLES = ("stream_seq", "task", "task_dependency", "task_event", "agent_message", "agent_message_delivery")

DDL = r"""
ALTER TABLE agent
  ADD COLUMN type                 text NOT NULL DEFAULT 'generic',
  ADD COLUMN status               text NOT NULL DEFAULT 'inactive',
  ADD COLUMN config               jsonb NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN metrics              jsonb NOT NULL DEFAULT '{}'::jsonb,
  ADD COLUMN capabilities         text[] NOT NULL DEFAULT '{}',
  ADD COLUMN heartbeat_interval_s integer NOT NULL DEFAULT 30,
  ADD COLUMN last_heartbeat_at    timestamptz,
  ADD CONSTRAINT ck_agent_status CHECK (status IN ('inactive', 'active', 'busy', 'offline', 'error')),
  ADD CONSTRAINT ck_agent_heartbeat_interval CHECK (heartbeat_interval_s > 0);
CREATE INDEX ix_agent_heartbeat ON agent (last_heartbeat_at) WHERE status IN ('active', 'busy', 'error');

CREATE TABLE stream_seq (
  org_id    uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  last_seq  bigint NOT NULL DEFAULT 0,
  CONSTRAINT pk_stream_seq PRIMARY KEY (org_id)
);

CREATE TABLE task (
  org_id                uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                    uuid NOT NULL,
  user_id               uuid,
  queue                 text NOT NULL DEFAULT 'default',
  title                 text NOT NULL,
  description           text,
  priority              integer NOT NULL DEFAULT 0,
  required_capabilities text[] NOT NULL DEFAULT '{}',
  state                 text NOT NULL DEFAULT 'submitted',
  created_by            uuid,
  assigned_to           uuid,
  claimed_by            uuid,
  lease_id              uuid,
  lease_expires_at      timestamptz,
  due_at                timestamptz,
  session_ids           uuid[] NOT NULL DEFAULT '{}',
  memory_ids            uuid[] NOT NULL DEFAULT '{}',
  document_ids          uuid[] NOT NULL DEFAULT '{}',
  metadata              jsonb NOT NULL DEFAULT '{}'::jsonb,
  result                jsonb,
  error                 text,
  attempts              integer NOT NULL DEFAULT 0,
  max_attempts          integer NOT NULL DEFAULT 3,
  result_memory_id      uuid,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  completed_at          timestamptz,
  CONSTRAINT pk_task PRIMARY KEY (org_id, id),
  CONSTRAINT fk_task_user FOREIGN KEY (org_id, user_id) REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_task_created_by FOREIGN KEY (org_id, created_by) REFERENCES agent (org_id, id),
  CONSTRAINT fk_task_assigned_to FOREIGN KEY (org_id, assigned_to) REFERENCES agent (org_id, id),
  CONSTRAINT fk_task_claimed_by FOREIGN KEY (org_id, claimed_by) REFERENCES agent (org_id, id),
  CONSTRAINT ck_task_state CHECK
    (state IN ('submitted', 'working', 'input-required', 'completed', 'failed', 'canceled')),
  CONSTRAINT ck_task_attempts CHECK (attempts >= 0 AND max_attempts >= 1)
);
-- The claim query: the next submitted task of a queue, highest priority then oldest.
CREATE INDEX ix_task_claim ON task (org_id, queue, priority DESC, id) WHERE state = 'submitted';
-- Leases that run out.
CREATE INDEX ix_task_lease ON task (org_id, lease_expires_at) WHERE state = 'working';
CREATE INDEX ix_task_assigned ON task (org_id, assigned_to);
CREATE INDEX ix_task_claimed ON task (org_id, claimed_by);
CREATE INDEX ix_task_user ON task (org_id, user_id);

CREATE TABLE task_dependency (
  org_id        uuid NOT NULL,
  task_id       uuid NOT NULL,
  depends_on_id uuid NOT NULL,
  CONSTRAINT pk_task_dependency PRIMARY KEY (org_id, task_id, depends_on_id),
  CONSTRAINT fk_task_dependency_task FOREIGN KEY (org_id, task_id) REFERENCES task (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_task_dependency_on FOREIGN KEY (org_id, depends_on_id) REFERENCES task (org_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_task_dependency_on ON task_dependency (org_id, depends_on_id);

CREATE TABLE task_event (
  org_id      uuid NOT NULL,
  seq         bigint NOT NULL,
  task_id     uuid NOT NULL,
  queue       text NOT NULL,
  kind        text NOT NULL,
  from_state  text,
  to_state    text NOT NULL,
  agent_id    uuid,
  key_id      uuid,
  actor       text NOT NULL,
  details     jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_task_event PRIMARY KEY (org_id, seq),
  CONSTRAINT fk_task_event_task FOREIGN KEY (org_id, task_id) REFERENCES task (org_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_task_event_task ON task_event (org_id, task_id, seq);
CREATE INDEX ix_task_event_queue ON task_event (org_id, queue, seq);

CREATE TABLE agent_message (
  org_id         uuid NOT NULL,
  id             uuid NOT NULL,
  seq            bigint NOT NULL,
  from_agent_id  uuid,
  to_agent_id    uuid,
  to_team_id     uuid,
  broadcast      boolean NOT NULL DEFAULT false,
  message_type   text NOT NULL,
  payload        jsonb NOT NULL DEFAULT '{}'::jsonb,
  reply_to       uuid,
  thread_id      uuid NOT NULL,
  task_id        uuid,
  key_id         uuid,
  created_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_agent_message PRIMARY KEY (org_id, id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE agent_message_default PARTITION OF agent_message DEFAULT;
CREATE INDEX ix_agent_message_id ON agent_message (org_id, id);
CREATE INDEX ix_agent_message_thread ON agent_message (org_id, thread_id, seq);

CREATE TABLE agent_message_delivery (
  org_id              uuid NOT NULL,
  agent_id            uuid NOT NULL,
  message_id          uuid NOT NULL,
  seq                 bigint NOT NULL,
  message_created_at  timestamptz NOT NULL,
  delivered_at        timestamptz,
  acked_at            timestamptz,
  CONSTRAINT pk_agent_message_delivery PRIMARY KEY (org_id, agent_id, message_id),
  CONSTRAINT fk_agent_message_delivery_agent FOREIGN KEY (org_id, agent_id)
    REFERENCES agent (org_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_agent_message_delivery_seq ON agent_message_delivery (org_id, agent_id, seq);
CREATE INDEX ix_agent_message_delivery_unacked ON agent_message_delivery (org_id, agent_id, seq)
  WHERE acked_at IS NULL;
CREATE INDEX ix_agent_message_delivery_message ON agent_message_delivery (org_id, message_id);
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
    # Reached through the parent only (whose policy applies), like message_default.
    op.execute("REVOKE ALL ON agent_message_default FROM engram_app")


def downgrade() -> None:
    for table in reversed(NEW_TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP INDEX IF EXISTS ix_agent_heartbeat")
    op.execute(
        "ALTER TABLE agent DROP CONSTRAINT IF EXISTS ck_agent_status, "
        "DROP CONSTRAINT IF EXISTS ck_agent_heartbeat_interval, DROP COLUMN IF EXISTS type, "
        "DROP COLUMN IF EXISTS status, DROP COLUMN IF EXISTS config, DROP COLUMN IF EXISTS metrics, "
        "DROP COLUMN IF EXISTS capabilities, DROP COLUMN IF EXISTS heartbeat_interval_s, "
        "DROP COLUMN IF EXISTS last_heartbeat_at"
    )

"""Webhooks: endpoints an organization registers, and the deliveries of events to them.

* ``webhook_endpoint`` holds a URL, the event types it subscribes to (``*`` for all) and its signing
  secret. The secret is kept as is (it signs every delivery, so it cannot be a digest); the previous one
  stays valid for a grace period after a rotation.
* ``webhook_delivery`` is the outbox: one row per event and endpoint, written in the same transaction as
  the change that raised the event, together with the queue job that delivers it. Each attempt is
  recorded on the row (``attempt_log``); the row stays after it succeeded or failed, for the delivery log.

See docs/decisions/0006-webhooks.md.

Revision ID: 0006_webhooks
Revises: 0005_documents
Create Date: 2026-11-23 01:00
"""

from __future__ import annotations

from alembic import op

revision = "0006_webhooks"
down_revision = "0005_documents"
branch_labels = None
depends_on = None

NEW_TABLES = ("webhook_endpoint", "webhook_delivery")

DDL = r"""
CREATE TABLE webhook_endpoint (
  org_id                      uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                          uuid NOT NULL,
  url                         text NOT NULL,
  description                 text,
  event_types                 text[] NOT NULL,
  enabled                     boolean NOT NULL DEFAULT true,
  secret                      text NOT NULL,
  previous_secret             text,
  previous_secret_expires_at  timestamptz,
  created_at                  timestamptz NOT NULL DEFAULT now(),
  updated_at                  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_webhook_endpoint PRIMARY KEY (org_id, id),
  CONSTRAINT ck_webhook_endpoint_event_types CHECK (cardinality(event_types) > 0)
);

CREATE TABLE webhook_delivery (
  org_id           uuid NOT NULL,
  id               uuid NOT NULL,
  endpoint_id      uuid NOT NULL,
  event_id         uuid NOT NULL,
  event_type       text NOT NULL,
  payload          jsonb NOT NULL,
  status           text NOT NULL DEFAULT 'pending',
  attempts         integer NOT NULL DEFAULT 0,
  max_attempts     integer,
  replays          integer NOT NULL DEFAULT 0,
  last_status_code integer,
  last_error       text,
  last_attempt_at  timestamptz,
  next_attempt_at  timestamptz,
  delivered_at     timestamptz,
  attempt_log      jsonb NOT NULL DEFAULT '[]'::jsonb,
  queue_job_id     bigint,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_webhook_delivery PRIMARY KEY (org_id, id),
  CONSTRAINT uq_webhook_delivery_event UNIQUE (org_id, endpoint_id, event_id),
  CONSTRAINT fk_webhook_delivery_endpoint FOREIGN KEY (org_id, endpoint_id)
    REFERENCES webhook_endpoint (org_id, id) ON DELETE CASCADE,
  CONSTRAINT ck_webhook_delivery_status CHECK (status IN ('pending', 'succeeded', 'failed'))
);
CREATE INDEX ix_webhook_delivery_endpoint ON webhook_delivery (org_id, endpoint_id, id);
CREATE INDEX ix_webhook_delivery_pending ON webhook_delivery (org_id, id) WHERE status = 'pending';
CREATE INDEX ix_webhook_delivery_created ON webhook_delivery (created_at) WHERE status <> 'pending';
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

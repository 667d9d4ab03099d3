"""Idempotency keys: the first answer to a POST sent with ``Idempotency-Key``, kept for replays.

``idempotency_key`` holds, per organization and key, a digest of the request (method, path, query and
body), its state (``running`` while the first request runs, then ``done``) and the first answer (status,
content type, body) for the documented window. See docs/api.md, "Retries and Idempotency-Key".

Revision ID: 0007_idempotency
Revises: 0006_webhooks
Create Date: 2026-12-03 02:00
"""

from __future__ import annotations

from alembic import op

revision = "0007_idempotency"
down_revision = "0006_webhooks"
branch_labels = None
depends_on = None

DDL = r"""
CREATE TABLE idempotency_key (
  org_id         uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  key            text NOT NULL,
  request_hash   bytea NOT NULL,
  state          text NOT NULL DEFAULT 'running',
  status_code    integer,
  content_type   text,
  body           bytea,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_idempotency_key PRIMARY KEY (org_id, key),
  CONSTRAINT ck_idempotency_key_state CHECK (state IN ('running', 'done'))
);
CREATE INDEX ix_idempotency_key_created ON idempotency_key (org_id, created_at);
"""


def upgrade() -> None:
    op.execute(DDL)
    op.execute("ALTER TABLE idempotency_key ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON idempotency_key "
        "USING (org_id = engram_current_org()) WITH CHECK (org_id = engram_current_org())"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_key TO engram_app")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS idempotency_key CASCADE")

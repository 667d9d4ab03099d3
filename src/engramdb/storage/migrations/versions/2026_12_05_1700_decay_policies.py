"""Decay per organization: an organization's own half-life for a memory type replaces the server's.

* ``decay_policy``: one row per (organization, memory type) the organization set with ``PUT /v1/decay``;
  ``half_life_days`` 0 means the type does not decay there. A type without a row has the server's
  half-life (``ENGRAM_DECAY_HALF_LIFE_DAYS``).

Revision ID: 0020_decay_policies
Revises: 0019_federated_insights
Create Date: 2026-12-05 17:00
"""

from __future__ import annotations

from alembic import op

revision = "0020_decay_policies"
down_revision = "0019_federated_insights"
branch_labels = None
depends_on = None

DDL = r"""
CREATE TABLE decay_policy (
  org_id          uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  memory_type     text NOT NULL,
  half_life_days  double precision NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_decay_policy PRIMARY KEY (org_id, memory_type),
  CONSTRAINT ck_decay_policy_type CHECK (memory_type IN ('fact', 'preference', 'task', 'procedural', 'episodic')),
  CONSTRAINT ck_decay_policy_days CHECK (half_life_days >= 0 AND half_life_days <= 36500)
);
"""


def upgrade() -> None:
    op.execute(DDL)
    op.execute("ALTER TABLE decay_policy ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON decay_policy "
        "USING (org_id = engram_current_org()) WITH CHECK (org_id = engram_current_org())"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON decay_policy TO engram_app")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS decay_policy CASCADE")

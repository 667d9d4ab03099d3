"""Erasure finds the facts that name an entity as their object by an index, whatever their state.

Deleting an entity (an erased user's, or one nothing names any more once a subject is erased) makes
PostgreSQL look for the facts that point at it, to cascade: ``fk_fact_object`` is checked with
``org_id = $1 AND object_id = $2``, which the partial ``ix_fact_object`` (current facts only) cannot
answer, so every deleted entity read all of its organization's facts. Erasing a user of 300 entities in
an organization of 200,000 facts ran past the statement timeout; ``ix_fact_object_all`` makes each
lookup one index probe. (The subject side has ``ix_fact_subject_history``.)

Revision ID: 0017_erasure_receipts
Revises: 0016_agents_throughput
Create Date: 2026-12-05 14:00
"""

from __future__ import annotations

from alembic import op

revision = "0017_erasure_receipts"
down_revision = "0016_agents_throughput"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_fact_object_all ON fact (org_id, object_id)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_fact_object_all")

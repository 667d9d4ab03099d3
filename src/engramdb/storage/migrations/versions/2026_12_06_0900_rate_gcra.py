"""Rate limits counted as GCRA: each ``rate_counter`` row holds a theoretical arrival time (``tat``)
instead of a fixed window's start and hits (``services.tenancy.quotas``). The counters are transient (at
worst a client gets its whole allowance again), so the rows are emptied rather than converted.

Revision ID: 0021_rate_gcra
Revises: 0020_decay_policies
Create Date: 2026-12-06 09:00
"""

from __future__ import annotations

from alembic import op

revision = "0021_rate_gcra"
down_revision = "0020_decay_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("TRUNCATE rate_counter")
    op.execute("ALTER TABLE rate_counter DROP COLUMN window_start, DROP COLUMN hits")
    op.execute("ALTER TABLE rate_counter ADD COLUMN tat timestamptz NOT NULL")


def downgrade() -> None:
    op.execute("TRUNCATE rate_counter")
    op.execute("ALTER TABLE rate_counter DROP COLUMN tat")
    op.execute(
        "ALTER TABLE rate_counter ADD COLUMN window_start timestamptz NOT NULL, ADD COLUMN hits integer NOT NULL"
    )

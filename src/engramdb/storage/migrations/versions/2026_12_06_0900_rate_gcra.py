"""Rate limits counted as GCRA: each ``rate_counter`` row holds a theoretical arrival time (``tat``) and
whether the last request it saw was refused (``refused``), instead of a fixed window's start and hits
(``services.tenancy.quotas``). The counters are transient (at worst a client gets its whole allowance
again), so the rows are emptied rather than converted. Processes of an older version still running on the
database during a rolling upgrade fail to count their requests until they are replaced: stop them first.

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
    op.execute("ALTER TABLE rate_counter ADD COLUMN tat timestamptz NOT NULL, ADD COLUMN refused boolean NOT NULL")


def downgrade() -> None:
    op.execute("TRUNCATE rate_counter")
    op.execute("ALTER TABLE rate_counter DROP COLUMN tat, DROP COLUMN refused")
    op.execute(
        "ALTER TABLE rate_counter ADD COLUMN window_start timestamptz NOT NULL, ADD COLUMN hits integer NOT NULL"
    )

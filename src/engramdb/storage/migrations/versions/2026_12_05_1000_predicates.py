"""The predicate catalogue: an organization's own predicates and its overrides of the built-in ones.

* ``predicate``: one row per predicate the organization defines, keyed by its name (snake_case, as facts
  store it). ``cardinality`` is ``one`` (a subject has one object at a time: a new fact closes the
  current one) or ``many``. Built-in predicates have no row: a row of the same name overrides the
  built-in, and deleting it brings the built-in back. The checks hold an import to what the API writes.

Revision ID: 0012_predicates
Revises: 0011_document_ingest
Create Date: 2026-12-05 10:00
"""

from __future__ import annotations

from alembic import op

revision = "0012_predicates"
down_revision = "0011_document_ingest"
branch_labels = None
depends_on = None

DDL = r"""
CREATE TABLE predicate (
  org_id       uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  name         text NOT NULL,
  cardinality  text NOT NULL,
  description  text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_predicate PRIMARY KEY (org_id, name),
  CONSTRAINT ck_predicate_name CHECK (name ~ '^[a-z][a-z0-9_]*$' AND char_length(name) <= 100),
  CONSTRAINT ck_predicate_cardinality CHECK (cardinality IN ('one', 'many'))
);
"""


def upgrade() -> None:
    op.execute(DDL)
    op.execute("ALTER TABLE predicate ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON predicate "
        "USING (org_id = engram_current_org()) WITH CHECK (org_id = engram_current_org())"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON predicate TO engram_app")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS predicate CASCADE")

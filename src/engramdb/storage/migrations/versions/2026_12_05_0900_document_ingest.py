"""Background document ingests: the bytes of a large document wait here for their job.

* ``document_upload``: one row per queued ingest (``POST /v1/documents`` or an upload over
  ``ENGRAM_DOCUMENT_INLINE_BYTES``, or with ``background=true``), keyed by its job. ``request`` holds what
  the ingest needs besides the bytes (path, type, owner, title, tags, metadata, and who asked: the key's
  bindings and scopes). The job row carries the owner (``job.user_id``), so erasing a user deletes the job
  and, by cascade, these bytes. The row is deleted when the job ends, either way; the job keeps what
  became of it.

Revision ID: 0011_document_ingest
Revises: 0010_rate_limits
Create Date: 2026-12-05 09:00
"""

from __future__ import annotations

from alembic import op

revision = "0011_document_ingest"
down_revision = "0010_rate_limits"
branch_labels = None
depends_on = None

DDL = r"""
CREATE TABLE document_upload (
  org_id      uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  job_id      uuid NOT NULL,
  request     jsonb NOT NULL,
  data        bytea NOT NULL,
  size_bytes  integer NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_document_upload PRIMARY KEY (org_id, job_id),
  CONSTRAINT fk_document_upload_job FOREIGN KEY (org_id, job_id) REFERENCES job (org_id, id) ON DELETE CASCADE
);
ALTER TABLE document_upload ALTER COLUMN data SET STORAGE EXTERNAL;
"""


def upgrade() -> None:
    op.execute(DDL)
    op.execute("ALTER TABLE document_upload ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON document_upload "
        "USING (org_id = engram_current_org()) WITH CHECK (org_id = engram_current_org())"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON document_upload TO engram_app")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS document_upload CASCADE")

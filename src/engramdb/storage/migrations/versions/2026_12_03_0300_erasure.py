"""Erasure reaches the job queue: the tenant role may forget its own organization's queue rows.

A queue row holds a job's ids (``args``: the org and the ``job`` row's id) and its ``lock`` (a session's or
a user's id), so erasing a user must remove the rows of their jobs too, finished or not. The tenant role
cannot read or delete queue rows (the queue is not tenant data and has no row-level security), so it calls
``engram_forget_queue_jobs``, which runs as the migrating role and touches only rows whose ``args`` name
the transaction's organization (``engram_current_org()``):

* a row not running is deleted (a pending one will not run; procrastinate's events go with it);
* a running row cannot be deleted under its worker, so it loses what names the erased data: its
  ``job_id`` becomes a random UUID that matches no ``job`` row (a retry finds nothing and ends) and its
  ``lock`` is cleared.

It runs with ``procrastinate`` first on its search path (procrastinate's delete trigger names its tables
unqualified), a schema the tenant role cannot create objects in. An index on ``args->>'job_id'`` finds a
job's rows (every attempt a job was re-queued with) without reading the whole queue, which keeps
finished rows.

Revision ID: 0008_erasure
Revises: 0007_idempotency
Create Date: 2026-12-03 03:00
"""

from __future__ import annotations

from alembic import op

revision = "0008_erasure"
down_revision = "0007_idempotency"
branch_labels = None
depends_on = None

DDL = r"""
CREATE INDEX ix_procrastinate_jobs_engram_job ON procrastinate.procrastinate_jobs ((args->>'job_id'))
  WHERE args ? 'job_id';

CREATE FUNCTION engram_forget_queue_jobs(job_ids uuid[]) RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = procrastinate, pg_catalog, pg_temp
  AS $f$
DECLARE
  org text := public.engram_current_org()::text;
  wanted text[] := job_ids::text[];
  forgotten integer;
  scrubbed integer;
BEGIN
  IF org IS NULL THEN
    RAISE EXCEPTION 'engram_forget_queue_jobs runs in a tenant transaction';
  END IF;
  DELETE FROM procrastinate.procrastinate_jobs q
   WHERE q.args ? 'job_id' AND q.args->>'job_id' = ANY (wanted) AND q.args->>'org_id' = org
     AND q.status <> 'doing';
  GET DIAGNOSTICS forgotten = ROW_COUNT;
  UPDATE procrastinate.procrastinate_jobs q
     SET args = q.args || jsonb_build_object('job_id', gen_random_uuid()::text), lock = NULL
   WHERE q.args ? 'job_id' AND q.args->>'job_id' = ANY (wanted) AND q.args->>'org_id' = org
     AND q.status = 'doing';
  GET DIAGNOSTICS scrubbed = ROW_COUNT;
  RETURN forgotten + scrubbed;
END
$f$;
REVOKE ALL ON FUNCTION engram_forget_queue_jobs(uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION engram_forget_queue_jobs(uuid[]) TO engram_app;
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS engram_forget_queue_jobs(uuid[])")
    op.execute("DROP INDEX IF EXISTS procrastinate.ix_procrastinate_jobs_engram_job")

"""Rate limits: per-organization overrides, the counters every API process shares, requests per day.

* ``rate_limit``: an organization's own limits per route class (``per_key``, ``per_org`` requests per
  window; null: the server's default, 0: no limit), set with ``PUT /v1/limits``.
* ``rate_counter``: one row per (organization, API key, route class), the hits of the current fixed window
  (``window_start``); the organization's own row has the nil UUID for ``key_id``. A request updates its
  rows with one ``INSERT … ON CONFLICT DO UPDATE … RETURNING``, so every API process on the database
  counts in the same rows; a row is reused window after window, so the table never grows past one row per
  key and class. ``fillfactor`` leaves room on each page for those updates to stay HOT (no index change).
* ``request_tally``: requests (and those refused with 429) per organization, UTC day and route class,
  for ``GET /v1/usage``; written by the same statement.

Revision ID: 0010_rate_limits
Revises: 0009_agents
Create Date: 2026-12-04 10:00
"""

from __future__ import annotations

from alembic import op

revision = "0010_rate_limits"
down_revision = "0009_agents"
branch_labels = None
depends_on = None

TABLES = ("rate_limit", "rate_counter", "request_tally")

DDL = r"""
CREATE TABLE rate_limit (
  org_id       uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  route_class  text NOT NULL,
  per_key      integer,
  per_org      integer,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_rate_limit PRIMARY KEY (org_id, route_class),
  CONSTRAINT ck_rate_limit_class CHECK (route_class IN ('reads', 'writes', 'searches', 'extraction', 'exports')),
  CONSTRAINT ck_rate_limit_values CHECK (per_key >= 0 AND per_org >= 0)
);

CREATE TABLE rate_counter (
  org_id        uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  key_id        uuid NOT NULL,
  route_class   text NOT NULL,
  window_start  timestamptz NOT NULL,
  hits          integer NOT NULL,
  CONSTRAINT pk_rate_counter PRIMARY KEY (org_id, key_id, route_class)
) WITH (fillfactor = 50);

CREATE TABLE request_tally (
  org_id       uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  day          date NOT NULL,
  route_class  text NOT NULL,
  requests     bigint NOT NULL,
  refused      bigint NOT NULL,
  CONSTRAINT pk_request_tally PRIMARY KEY (org_id, day, route_class)
) WITH (fillfactor = 50);
"""


def upgrade() -> None:
    op.execute(DDL)
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            "USING (org_id = engram_current_org()) WITH CHECK (org_id = engram_current_org())"
        )
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO engram_app")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")

"""Federated insights: counts across organizations, released only under differential privacy.

* ``organization.isolation``: ``strict``, ``shared`` (the default) or ``federated``, as teams and apps have
  had since 0014. Only a ``federated`` organization (or a ``federated`` team inside one) may join a session.
* ``federated_session`` (the seed's ``federated_sessions``), in the organization that opened it: a topic, one
  aggregate query of a fixed set (``query``) over named ``buckets``, the per-participant bound of each
  bucket's count (``bound``), the ε each release spends, the fewest participants a release needs, and the
  organizations invited (``invited_org_ids``: no foreign key, they are other organizations).
* ``federated_participant`` (the seed's ``federated_participants``), in the participant's organization: the
  invitation (``status`` invited), then the organization or one of its teams once it joined (``joined``,
  ``left``), with its privacy budget (``epsilon_budget``), what releases spent of it and how many counted it.
  It carries the session's owner and id (``session_org_id``, ``session_id``) and a copy of the session's
  definition, so a participant reads everything about its participation from its own rows.
* ``federated_contribution``: the participant's record of each release it was counted in (its reputation,
  readable by it alone): the ε spent and the size of what it contributed after clamping.
* ``aggregated_insight`` (the seed's ``aggregated_insights``): a released, noisy histogram with its mechanism,
  ε, δ, sensitivity, noise scale, participants counted and time; one copy in the owner's organization and one
  in each participant's, with the same id, so each reads its own.

Every table keeps the tenancy rules (``org_id`` first in each key, row-level security with only the
``tenant_isolation`` policy): the one code that writes into several organizations in one transaction
(``services/insights/compute.py``) switches ``engram.org_id`` between statements, so each statement still
sees one organization.

Revision ID: 0019_federated_insights
Revises: 0018_offloaded_contexts
Create Date: 2026-12-05 16:00
"""

from __future__ import annotations

from alembic import op

revision = "0019_federated_insights"
down_revision = "0018_offloaded_contexts"
branch_labels = None
depends_on = None

DDL = r"""
ALTER TABLE organization
  ADD COLUMN isolation text NOT NULL DEFAULT 'shared',
  ADD CONSTRAINT ck_organization_isolation CHECK (isolation IN ('strict', 'shared', 'federated'));

CREATE TABLE federated_session (
  org_id            uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                uuid NOT NULL,
  topic             text NOT NULL,
  description       text,
  query             text NOT NULL,
  buckets           text[] NOT NULL,
  bound             integer NOT NULL,
  epsilon           double precision NOT NULL,
  min_participants  integer NOT NULL,
  invited_org_ids   uuid[] NOT NULL DEFAULT '{}',
  status            text NOT NULL DEFAULT 'open',
  created_by        uuid,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  closed_at         timestamptz,
  CONSTRAINT pk_federated_session PRIMARY KEY (org_id, id),
  CONSTRAINT ck_federated_session_status CHECK (status IN ('open', 'closed')),
  CONSTRAINT ck_federated_session_bound CHECK (bound >= 1),
  CONSTRAINT ck_federated_session_epsilon CHECK (epsilon > 0),
  CONSTRAINT ck_federated_session_min CHECK (min_participants >= 1)
);

CREATE TABLE federated_participant (
  org_id            uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                uuid NOT NULL,
  session_org_id    uuid NOT NULL,
  session_id        uuid NOT NULL,
  team_id           uuid,
  definition        jsonb NOT NULL,
  session_status    text NOT NULL DEFAULT 'open',
  status            text NOT NULL DEFAULT 'invited',
  epsilon_budget    double precision,
  epsilon_spent     double precision NOT NULL DEFAULT 0,
  releases          integer NOT NULL DEFAULT 0,
  joined_by         uuid,
  joined_at         timestamptz,
  left_at           timestamptz,
  last_released_at  timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_federated_participant PRIMARY KEY (org_id, id),
  CONSTRAINT fk_federated_participant_team FOREIGN KEY (org_id, team_id)
    REFERENCES team (org_id, id) ON DELETE CASCADE,
  CONSTRAINT ck_federated_participant_status CHECK (status IN ('invited', 'joined', 'left')),
  CONSTRAINT ck_federated_participant_session_status CHECK (session_status IN ('open', 'closed')),
  CONSTRAINT ck_federated_participant_budget CHECK
    (epsilon_budget IS NULL OR (epsilon_budget > 0 AND epsilon_spent <= epsilon_budget + 1e-9))
);
-- One row per organization (team_id NULL: the invitation, then the organization's own participation) and
-- per team that joined, in each session.
CREATE UNIQUE INDEX ux_federated_participant ON federated_participant
  (org_id, session_org_id, session_id, coalesce(team_id, '00000000-0000-0000-0000-000000000000'::uuid));
CREATE INDEX ix_federated_participant_session ON federated_participant (org_id, session_id);
CREATE INDEX ix_federated_participant_team ON federated_participant (org_id, team_id);

CREATE TABLE federated_contribution (
  org_id            uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                uuid NOT NULL,
  participant_id    uuid NOT NULL,
  session_org_id    uuid NOT NULL,
  session_id        uuid NOT NULL,
  insight_id        uuid NOT NULL,
  epsilon           double precision NOT NULL,
  buckets_present   integer NOT NULL,
  clamped_total     bigint NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_federated_contribution PRIMARY KEY (org_id, id),
  CONSTRAINT fk_federated_contribution_participant FOREIGN KEY (org_id, participant_id)
    REFERENCES federated_participant (org_id, id) ON DELETE CASCADE
);
CREATE INDEX ix_federated_contribution_participant ON federated_contribution (org_id, participant_id);

CREATE TABLE aggregated_insight (
  org_id            uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                uuid NOT NULL,
  session_org_id    uuid NOT NULL,
  session_id        uuid NOT NULL,
  topic             text NOT NULL,
  query             text NOT NULL,
  histogram         jsonb NOT NULL,
  mechanism         text NOT NULL,
  epsilon           double precision NOT NULL,
  delta             double precision NOT NULL,
  bound             integer NOT NULL,
  sensitivity       double precision NOT NULL,
  scale             double precision NOT NULL,
  participants      integer NOT NULL,
  released_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_aggregated_insight PRIMARY KEY (org_id, id)
);
CREATE INDEX ix_aggregated_insight_session ON aggregated_insight (org_id, session_id);
"""

TABLES = ("federated_session", "federated_participant", "federated_contribution", "aggregated_insight")


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
    op.execute("ALTER TABLE organization DROP COLUMN IF EXISTS isolation")

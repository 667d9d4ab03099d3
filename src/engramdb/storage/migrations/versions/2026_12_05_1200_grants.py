"""Sharing inside an organization: access grants, and isolation levels of teams and apps.

* ``access_grant`` (the seed's ``tenant_access_policies`` and ``tenant_sharing_rules``): ``read`` or
  ``write`` on one kind of resource (``memories``, ``sessions``, ``documents``, ``repositories``,
  ``facts``), given to exactly one grantee (a team, a user, an agent or an API key), narrowed by whose
  rows they are (``owner_user_id``), an app, a repository, a session, a memory type, tags and categories
  (any of them). A grant stops applying when it expires (``expires_at``) or is revoked (``revoked_at``:
  the row stays, for the record). Named ``access_grant``, not ``grant``: GRANT is a reserved word of SQL,
  and every hand-written query over the catalogue would have to quote it. Every reference cascades: a
  grant naming a deleted team, user, agent, key, app, session or repository goes with it (a narrowing
  set to NULL would widen the grant).
* ``team.isolation`` and ``app.isolation``: ``strict`` (no grant reaches in or out), ``shared`` (grants
  apply: the default, as in the seed's example tenant) or ``federated`` (shared, and contributes to
  federated insights, which a later change builds).

Revision ID: 0014_grants
Revises: 0013_retention
Create Date: 2026-12-05 12:00
"""

from __future__ import annotations

from alembic import op

revision = "0014_grants"
down_revision = "0013_retention"
branch_labels = None
depends_on = None

DDL = r"""
ALTER TABLE team
  ADD COLUMN isolation text NOT NULL DEFAULT 'shared',
  ADD CONSTRAINT ck_team_isolation CHECK (isolation IN ('strict', 'shared', 'federated'));
ALTER TABLE app
  ADD COLUMN isolation text NOT NULL DEFAULT 'shared',
  ADD CONSTRAINT ck_app_isolation CHECK (isolation IN ('strict', 'shared', 'federated'));

CREATE TABLE access_grant (
  org_id            uuid NOT NULL REFERENCES organization (org_id) ON DELETE CASCADE,
  id                uuid NOT NULL,
  permission        text NOT NULL,
  resource          text NOT NULL,
  grantee_team_id   uuid,
  grantee_user_id   uuid,
  grantee_agent_id  uuid,
  grantee_key_id    uuid,
  owner_user_id     uuid,
  app_id            uuid,
  repository_id     uuid,
  session_id        uuid,
  memory_type       text,
  tags              text[] NOT NULL DEFAULT '{}',
  categories        text[] NOT NULL DEFAULT '{}',
  description       text,
  expires_at        timestamptz,
  revoked_at        timestamptz,
  created_by        uuid,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT pk_access_grant PRIMARY KEY (org_id, id),
  CONSTRAINT fk_access_grant_grantee_team FOREIGN KEY (org_id, grantee_team_id)
    REFERENCES team (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_access_grant_grantee_user FOREIGN KEY (org_id, grantee_user_id)
    REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_access_grant_grantee_agent FOREIGN KEY (org_id, grantee_agent_id)
    REFERENCES agent (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_access_grant_grantee_key FOREIGN KEY (org_id, grantee_key_id)
    REFERENCES api_key (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_access_grant_owner FOREIGN KEY (org_id, owner_user_id)
    REFERENCES user_account (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_access_grant_app FOREIGN KEY (org_id, app_id) REFERENCES app (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_access_grant_repository FOREIGN KEY (org_id, repository_id)
    REFERENCES repository (org_id, id) ON DELETE CASCADE,
  CONSTRAINT fk_access_grant_session FOREIGN KEY (org_id, session_id)
    REFERENCES session (org_id, id) ON DELETE CASCADE,
  CONSTRAINT ck_access_grant_permission CHECK (permission IN ('read', 'write')),
  CONSTRAINT ck_access_grant_resource CHECK
    (resource IN ('memories', 'sessions', 'documents', 'repositories', 'facts')),
  CONSTRAINT ck_access_grant_one_grantee CHECK
    (num_nonnulls(grantee_team_id, grantee_user_id, grantee_agent_id, grantee_key_id) = 1)
);
-- A request loads its caller's grants by grantee (a bitmap OR of these); erasures find them by any id.
CREATE INDEX ix_access_grant_team ON access_grant (org_id, grantee_team_id);
CREATE INDEX ix_access_grant_user ON access_grant (org_id, grantee_user_id);
CREATE INDEX ix_access_grant_agent ON access_grant (org_id, grantee_agent_id);
CREATE INDEX ix_access_grant_key ON access_grant (org_id, grantee_key_id);
CREATE INDEX ix_access_grant_owner ON access_grant (org_id, owner_user_id);
CREATE INDEX ix_access_grant_app ON access_grant (org_id, app_id);
CREATE INDEX ix_access_grant_repository ON access_grant (org_id, repository_id);
CREATE INDEX ix_access_grant_session ON access_grant (org_id, session_id);
"""


def upgrade() -> None:
    op.execute(DDL)
    op.execute("ALTER TABLE access_grant ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON access_grant "
        "USING (org_id = engram_current_org()) WITH CHECK (org_id = engram_current_org())"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON access_grant TO engram_app")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS access_grant CASCADE")
    op.execute("ALTER TABLE app DROP COLUMN IF EXISTS isolation")
    op.execute("ALTER TABLE team DROP COLUMN IF EXISTS isolation")

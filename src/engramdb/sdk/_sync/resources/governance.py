# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.
"""Export and import (``client.data``); retention policies and runs (``client.retention``) and legal holds
(``client.legal_holds``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from engramdb.schemas.export import ImportResult
from engramdb.schemas.retention import (
    LegalHold,
    LegalHoldCreate,
    LegalHoldFilters,
    LegalHoldUpdate,
    RetentionPolicy,
    RetentionPolicyCreate,
    RetentionPolicyFilters,
    RetentionPolicyUpdate,
    RetentionRun,
    RetentionRunFilters,
)
from engramdb.schemas.sharing import Grant, GrantCreate, GrantFilters, GrantUpdate
from engramdb.sdk import _common as c
from engramdb.sdk._common import Id
from engramdb.sdk._sync.pager import Pager
from engramdb.sdk._sync.resources.base import Fields, Resource

if TYPE_CHECKING:
    from engramdb.sdk._sync.http import HTTP

# A run may archive or delete many rows: an hour to read its report, and not repeated on a timeout.
_RUN_TIMEOUT = httpx.Timeout(60.0, read=3600.0)


class Data(Resource):
    """Export and import of an organization or one user as JSON Lines."""

    @c.operation("export_data")
    def export(
        self,
        *,
        user_id: Id | None = None,
        external_user_id: str | None = None,
        include_embeddings: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Every record of the org (or of one user), one dict per line, header first, read as it streams."""
        params = {"user_id": user_id, "external_user_id": external_user_id, "include_embeddings": include_embeddings}
        with self._client.stream("GET", "/v1/export", params=params) as response:
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)

    @c.operation("import_data")
    def import_(self, lines: bytes | Iterable[Mapping[str, Any]]) -> ImportResult:
        """Import an export (bytes of JSON Lines, or its records) into the key's organization; rows whose
        ids are there already are left as they are, so importing twice adds nothing."""
        content = lines if isinstance(lines, bytes) else "".join(json.dumps(x) + "\n" for x in lines).encode()
        headers = {"Content-Type": "application/x-ndjson"}
        # Not repeated on a timeout (a long import may still be running); an hour to read the answer.
        timeout = httpx.Timeout(60.0, read=3600.0)
        return self._client.call(
            ImportResult, "POST", "/v1/import", content=content, headers=headers, idempotent=False, timeout=timeout
        )


class RetentionPolicies(Resource):
    """``client.retention.policies``: what the organization archives or deletes, and when (admin keys)."""

    @c.operation("create_retention_policy")
    def create(self, policy: RetentionPolicyCreate | None = None, /, **fields: Fields) -> RetentionPolicy:
        """A policy: ``target``, ``after_days``, and optionally ``action``, ``basis``, ``keep_latest`` and
        narrowing (``app_id``, ``team_id``, ``user_id``, ``memory_type``, ``state``)."""
        sent = c.body(RetentionPolicyCreate, policy, fields)
        return self._client.call(RetentionPolicy, "POST", "/v1/retention/policies", json=sent)

    @c.operation("list_retention_policies")
    def list(self, filters: RetentionPolicyFilters | None = None, /, **fields: Fields) -> Pager[RetentionPolicy]:
        """Newest first. ``fields``: target, enabled, cursor, limit."""
        params = c.filters(RetentionPolicyFilters, filters, fields)
        return Pager(self._client, "/v1/retention/policies", RetentionPolicy, params)

    @c.operation("get_retention_policy")
    def get(self, policy_id: Id) -> RetentionPolicy:
        return self._client.call(RetentionPolicy, "GET", f"/v1/retention/policies/{c.path_id(policy_id)}")

    @c.operation("update_retention_policy")
    def update(
        self, policy_id: Id, change: RetentionPolicyUpdate | None = None, /, **fields: Fields
    ) -> RetentionPolicy:
        sent = c.body(RetentionPolicyUpdate, change, fields)
        path = f"/v1/retention/policies/{c.path_id(policy_id)}"
        return self._client.call(RetentionPolicy, "PATCH", path, json=sent)

    @c.operation("delete_retention_policy")
    def delete(self, policy_id: Id) -> None:
        self._client.request("DELETE", f"/v1/retention/policies/{c.path_id(policy_id)}")

    @c.operation("run_retention_policy")
    def run(self, policy_id: Id, *, dry_run: bool = False) -> RetentionRun:
        """Run the policy now (``dry_run``: count what it would do, change nothing); the run's report."""
        path = f"/v1/retention/policies/{c.path_id(policy_id)}/run"
        return self._client.call(
            RetentionRun, "POST", path, params={"dry_run": dry_run}, idempotent=False, timeout=_RUN_TIMEOUT
        )


class RetentionRuns(Resource):
    """``client.retention.runs``: the reports of retention runs."""

    @c.operation("list_retention_runs")
    def list(self, filters: RetentionRunFilters | None = None, /, **fields: Fields) -> Pager[RetentionRun]:
        """Newest first. ``fields``: policy_id, trigger (sweep, manual), dry_run, cursor, limit."""
        params = c.filters(RetentionRunFilters, filters, fields)
        return Pager(self._client, "/v1/retention/runs", RetentionRun, params)

    @c.operation("get_retention_run")
    def get(self, run_id: Id) -> RetentionRun:
        return self._client.call(RetentionRun, "GET", f"/v1/retention/runs/{c.path_id(run_id)}")


class Retention(Resource):
    """``client.retention``: policies, runs, and a run of everything now (admin keys)."""

    def __init__(self, client: HTTP) -> None:
        super().__init__(client)
        self.policies = RetentionPolicies(client)
        self.runs = RetentionRuns(client)

    @c.operation("run_retention")
    def run(self, *, dry_run: bool = False) -> RetentionRun:
        """Delete expired memories and sessions and run every enabled policy now (``dry_run``: count only)."""
        return self._client.call(
            RetentionRun,
            "POST",
            "/v1/retention/run",
            params={"dry_run": dry_run},
            idempotent=False,
            timeout=_RUN_TIMEOUT,
        )


class LegalHolds(Resource):
    """``client.legal_holds``: holds that suspend deletion of a user's data, or the organization's (admin)."""

    @c.operation("create_legal_hold")
    def create(self, hold: LegalHoldCreate | None = None, /, **fields: Fields) -> LegalHold:
        """``reason``, and ``user_id`` (none: the whole organization)."""
        sent = c.body(LegalHoldCreate, hold, fields)
        return self._client.call(LegalHold, "POST", "/v1/legal-holds", json=sent)

    @c.operation("list_legal_holds")
    def list(self, filters: LegalHoldFilters | None = None, /, **fields: Fields) -> Pager[LegalHold]:
        """Active holds, newest first. ``fields``: user_id, include_released, cursor, limit."""
        return Pager(self._client, "/v1/legal-holds", LegalHold, c.filters(LegalHoldFilters, filters, fields))

    @c.operation("get_legal_hold")
    def get(self, hold_id: Id) -> LegalHold:
        return self._client.call(LegalHold, "GET", f"/v1/legal-holds/{c.path_id(hold_id)}")

    @c.operation("update_legal_hold")
    def update(self, hold_id: Id, change: LegalHoldUpdate | None = None, /, **fields: Fields) -> LegalHold:
        sent = c.body(LegalHoldUpdate, change, fields)
        return self._client.call(LegalHold, "PATCH", f"/v1/legal-holds/{c.path_id(hold_id)}", json=sent)

    @c.operation("release_legal_hold")
    def release(self, hold_id: Id) -> LegalHold:
        """Release the hold (it stays on record, released)."""
        return self._client.call(LegalHold, "POST", f"/v1/legal-holds/{c.path_id(hold_id)}/release")

    @c.operation("delete_legal_hold")
    def delete(self, hold_id: Id) -> None:
        """The same as ``release``, answered with nothing."""
        self._client.request("DELETE", f"/v1/legal-holds/{c.path_id(hold_id)}")


class Grants(Resource):
    """``client.grants``: access grants, who else may read or write a slice of the organization's data
    (admin); see docs/api.md, Sharing."""

    @c.operation("create_grant")
    def create(self, grant: GrantCreate | None = None, /, **fields: Fields) -> Grant:
        """``resource``, one grantee (``grantee_team_id``, ``grantee_user_id``, ``grantee_agent_id`` or
        ``grantee_key_id``), ``permission`` (read by default) and any narrowing (``owner_user_id``,
        ``app_id``, ``repository_id``, ``session_id``, ``memory_type``, ``tags``, ``categories``)."""
        sent = c.body(GrantCreate, grant, fields)
        return self._client.call(Grant, "POST", "/v1/grants", json=sent)

    @c.operation("list_grants")
    def list(self, filters: GrantFilters | None = None, /, **fields: Fields) -> Pager[Grant]:
        """Grants in force, newest first. ``fields``: resource, permission, grantee_team_id, grantee_user_id,
        grantee_agent_id, grantee_key_id, owner_user_id, include_inactive, cursor, limit."""
        return Pager(self._client, "/v1/grants", Grant, c.filters(GrantFilters, filters, fields))

    @c.operation("get_grant")
    def get(self, grant_id: Id) -> Grant:
        return self._client.call(Grant, "GET", f"/v1/grants/{c.path_id(grant_id)}")

    @c.operation("update_grant")
    def update(self, grant_id: Id, change: GrantUpdate | None = None, /, **fields: Fields) -> Grant:
        """``expires_at`` (None: never) or ``description``."""
        sent = c.body(GrantUpdate, change, fields)
        return self._client.call(Grant, "PATCH", f"/v1/grants/{c.path_id(grant_id)}", json=sent)

    @c.operation("revoke_grant")
    def revoke(self, grant_id: Id) -> Grant:
        """Revoke at once (the grant stays on record, revoked); revoking again changes nothing."""
        return self._client.call(Grant, "DELETE", f"/v1/grants/{c.path_id(grant_id)}")

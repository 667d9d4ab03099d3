"""Retention policies (admin): what an organization archives or deletes, and when; runs of them, by an admin
(one policy, or all) or by the periodic sweep (every organization), each leaving a report.

* A policy is data (``schemas/retention.py``): a target, an action, a basis, ``after_days``, an optional
  ``keep_latest`` and narrowing. What it may ask is checked on create and on every change (422 naming the
  field); the migration's checks hold the same rules.
* A run (``run``: one policy, enabled or not, so a policy can be tried dry before it is enabled;
  ``run_all``: the deletion of expired rows and every enabled policy) walks the steps of ``steps.py`` and
  writes one ``retention_run`` with its report and one audit row. A dry run changes nothing and writes its
  report all the same. Two real runs of one organization never overlap: the second is refused (409), or
  skipped by the sweep.
* The sweep (``sweep``, a periodic job every ``ENGRAM_RETENTION_SWEEP_MINUTES``) first drops the log
  partitions every organization lets go (``archive.py``), then runs ``run_all`` for each organization with
  enabled policies, expired rows or dropped partitions; it keeps a report only of a run that changed
  something or failed, so an idle organization's run list stays empty.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import ColumnElement, delete, func, insert, select, union, update
from sqlalchemy.exc import IntegrityError

from engramdb import ids
from engramdb.errors import Conflict, ValidationFailed
from engramdb.schemas.common import Page
from engramdb.schemas.retention import (
    RetentionPolicy,
    RetentionPolicyCreate,
    RetentionPolicyFilters,
    RetentionPolicyUpdate,
    RetentionRun,
    RetentionRunFilters,
    impossible,
)
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.governance import archive, steps
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.repo import one_or_404, page_by_id, raise_conflict, require_row

p = t.retention_policy
r = t.retention_run
_LOCK = 0x72746E73  # advisory lock namespace ('rtns'): one real retention run per organization at a time
_CONFLICTS = {"uq_retention_policy_name": "a retention policy with that name already exists"}
_log = logging.getLogger(__name__)


# --- policies ------------------------------------------------------------------------------------------


async def _check_references(conn: Any, caller: Caller, values: dict[str, Any]) -> None:
    for column, table, what in (
        ("app_id", t.app, "app"),
        ("team_id", t.team, "team"),
        ("user_id", t.user_account, "user"),
    ):
        await require_row(conn, table, caller.org_id, values.get(column), what)


def _one(caller: Caller, policy_id: uuid.UUID) -> Any:
    return select(p).where(p.c.org_id == caller.org_id, p.c.id == policy_id)


async def create(db: Database, caller: Caller, body: RetentionPolicyCreate) -> RetentionPolicy:
    caller.require("admin")
    values = body.model_dump()
    async with db.tenant(caller.org_id) as conn:
        await _check_references(conn, caller, values)
        stmt = insert(p).values(org_id=caller.org_id, id=ids.uuid7(), **values).returning(p)
        try:
            row = dict((await conn.execute(stmt)).mappings().one())
        except IntegrityError as exc:
            raise_conflict(exc, _CONFLICTS)
        await audit.record(conn, caller, "retention_policy.created", "retention_policy", row["id"], _details(row))
    return RetentionPolicy.model_validate(row)


def _details(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("target", "action", "basis", "after_days", "keep_latest", "enabled")}


async def get(db: Database, caller: Caller, policy_id: uuid.UUID) -> RetentionPolicy:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        return RetentionPolicy.model_validate(
            await one_or_404(conn, _one(caller, policy_id), "retention policy", policy_id)
        )


async def list_policies(db: Database, caller: Caller, filters: RetentionPolicyFilters) -> Page[RetentionPolicy]:
    caller.require("admin")
    conds: list[ColumnElement[bool]] = [p.c.org_id == caller.org_id]
    if filters.target is not None:
        conds.append(p.c.target == filters.target)
    if filters.enabled is not None:
        conds.append(p.c.enabled == filters.enabled)
    async with db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(
            conn, select(p).where(*conds), p, cursor=filters.cursor, limit=filters.limit
        )
    return Page[RetentionPolicy](data=[RetentionPolicy.model_validate(row) for row in rows], next_cursor=next_cursor)


async def update_policy(
    db: Database, caller: Caller, policy_id: uuid.UUID, body: RetentionPolicyUpdate
) -> RetentionPolicy:
    caller.require("admin")
    change = body.model_dump(exclude_unset=True)
    required = sorted(
        n for n in ("name", "action", "basis", "after_days", "enabled") if n in change and change[n] is None
    )
    if required:
        errors = [{"location": f"body/{name}", "message": "may not be null"} for name in required]
        raise ValidationFailed(f"{', '.join(required)} may not be null: leave a field out to keep it", errors=errors)
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, _one(caller, policy_id).with_for_update(), "retention policy", policy_id)
        wrong = impossible({**row, **change})
        if wrong:
            errors = [{"location": f"body/{e['field']}", "message": e["message"]} for e in wrong]
            raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in wrong), errors=errors)
        await _check_references(conn, caller, change)
        if change:
            stmt = update(p).where(p.c.org_id == caller.org_id, p.c.id == policy_id)
            try:
                row = dict(
                    (await conn.execute(stmt.values(**change, updated_at=func.now()).returning(p))).mappings().one()
                )
            except IntegrityError as exc:
                raise_conflict(exc, _CONFLICTS)
            details = {"fields": sorted(change)}
            await audit.record(conn, caller, "retention_policy.updated", "retention_policy", policy_id, details)
    return RetentionPolicy.model_validate(row)


async def delete_policy(db: Database, caller: Caller, policy_id: uuid.UUID) -> None:
    """Delete a policy; the reports of its runs stay (naming its id)."""
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        await one_or_404(conn, _one(caller, policy_id).with_for_update(), "retention policy", policy_id)
        await conn.execute(delete(p).where(p.c.org_id == caller.org_id, p.c.id == policy_id))
        await audit.record(conn, caller, "retention_policy.deleted", "retention_policy", policy_id)


# --- runs ----------------------------------------------------------------------------------------------


async def get_run(db: Database, caller: Caller, run_id: uuid.UUID) -> RetentionRun:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        query = select(r).where(r.c.org_id == caller.org_id, r.c.id == run_id)
        return RetentionRun.model_validate(await one_or_404(conn, query, "retention run", run_id))


async def list_runs(db: Database, caller: Caller, filters: RetentionRunFilters) -> Page[RetentionRun]:
    caller.require("admin")
    conds: list[ColumnElement[bool]] = [r.c.org_id == caller.org_id]
    for name in ("policy_id", "trigger", "dry_run"):
        if (value := getattr(filters, name)) is not None:
            conds.append(r.c[name] == value)
    async with db.tenant(caller.org_id) as conn:
        rows, next_cursor = await page_by_id(
            conn, select(r).where(*conds), r, cursor=filters.cursor, limit=filters.limit
        )
    return Page[RetentionRun](data=[RetentionRun.model_validate(row) for row in rows], next_cursor=next_cursor)


async def run(rt: Runtime, caller: Caller, policy_id: uuid.UUID, *, dry_run: bool) -> RetentionRun:
    """Run one policy now (enabled or not), or count what it would do."""
    caller.require("admin")
    async with rt.db.tenant(caller.org_id) as conn:
        policy = await one_or_404(conn, _one(caller, policy_id), "retention policy", policy_id)
    found = await _run(rt, caller, [policy], expired=False, dry_run=dry_run, policy_id=policy_id, trigger="manual")
    assert found is not None
    return found


async def run_all(rt: Runtime, caller: Caller, *, dry_run: bool) -> RetentionRun:
    """Delete the organization's expired rows and run every enabled policy now, or count what that would do."""
    caller.require("admin")
    found = await _run(rt, caller, await _enabled(rt, caller.org_id), expired=True, dry_run=dry_run, trigger="manual")
    assert found is not None
    return found


async def _enabled(rt: Runtime, org_id: uuid.UUID) -> list[dict[str, Any]]:
    async with rt.db.tenant(org_id) as conn:
        rows = await conn.execute(select(p).where(p.c.org_id == org_id, p.c.enabled).order_by(p.c.id))
        return [dict(row) for row in rows.mappings()]


@asynccontextmanager
async def _exclusive(db: Database, org_id: uuid.UUID) -> AsyncIterator[bool]:
    """Whether this is the organization's only real run now (a session advisory lock, held to the end)."""
    key = (_LOCK, func.hashtext(str(org_id)))
    async with db.autocommit() as conn:
        got = bool(await conn.scalar(select(func.pg_try_advisory_lock(*key))))
        try:
            yield got
        finally:
            if got:
                await conn.execute(select(func.pg_advisory_unlock(*key)))


async def _run(
    rt: Runtime,
    caller: Caller,
    policies: list[dict[str, Any]],
    *,
    expired: bool,
    dry_run: bool,
    trigger: str,
    policy_id: uuid.UUID | None = None,
    dropped: list[tuple[steps.Step, int]] | None = None,
) -> RetentionRun | None:
    """One run and its report; None when the sweep's run changed nothing (no report is kept)."""
    org = caller.org_id
    run_id = ids.uuid7()
    report = steps.Report()
    for step, rows in dropped or []:
        report.add(step, rows, partitions=1)
    async with rt.db.tenant(org) as conn:
        now: datetime = (await conn.execute(select(func.now()))).scalar_one()
    plan = steps.plan(policies, now, expired_grace_days=rt.settings.expired_grace_days if expired else None)
    error: str | None = None
    if dry_run:
        async with rt.db.tenant(org) as conn:
            await steps.count(conn, org, plan, report)
    else:
        async with _exclusive(rt.db, org) as alone:
            if not alone:
                if trigger == "sweep":
                    return None
                raise Conflict("a retention run of this organization is in progress; try again when it has finished")
            export = archive.RunExport(rt, org, run_id)
            try:
                for step in plan:
                    await steps.apply(rt, caller, step, report, now=now, export=export)
            except Exception as exc:  # the report says how far it got; the next run goes on from there
                _log.exception("retention run %s of organization %s failed", run_id, org)
                error = f"{type(exc).__name__}: {exc}"[:2000]
    if trigger == "sweep" and not report.rows and error is None and not dropped:
        return None
    async with rt.db.tenant(org) as conn:
        values = {"policy_id": policy_id, "trigger": trigger, "dry_run": dry_run, "counts": report.counts}
        stmt = insert(r).values(
            org_id=org,
            id=run_id,
            **values,
            steps=to_jsonable_python(report.steps),
            error=error,
            started_at=now,
            finished_at=func.now(),
        )
        row = dict((await conn.execute(stmt.returning(r))).mappings().one())
        details = {
            "policy_id": policy_id and str(policy_id),
            "dry_run": dry_run,
            "counts": report.counts,
            "error": error is not None,
        }
        await audit.record(conn, caller, "retention.run", "retention_run", run_id, details)
    return RetentionRun.model_validate(row)


async def sweep(rt: Runtime) -> int:
    """The periodic sweep: drop the log partitions every organization lets go, then delete every
    organization's expired rows and apply its enabled policies. Returns the rows archived or deleted."""
    dropped = await archive.drop_partitions(rt)
    m, s, oc = t.memory, t.session, t.offloaded_context
    async with rt.db.system() as conn:
        now: datetime = (await conn.execute(select(func.now()))).scalar_one()
        cutoff = now - timedelta(days=rt.settings.expired_grace_days)
        orgs = union(
            select(p.c.org_id).where(p.c.enabled),
            select(m.c.org_id).where(m.c.expires_at <= cutoff),
            select(s.c.org_id).where(s.c.expires_at <= cutoff),
            select(oc.c.org_id).where(oc.c.expires_at <= cutoff),
        )
        due = set((await conn.execute(orgs)).scalars()) | set(dropped)
    changed = 0
    for org_id in sorted(due):
        caller = Caller(
            org_id=org_id, scopes=frozenset({"admin"}), actor="retention", request_id=f"retention:{uuid.uuid4()}"
        )
        try:
            policies = await _enabled(rt, org_id)
            found = await _run(
                rt, caller, policies, expired=True, dry_run=False, trigger="sweep", dropped=dropped.get(org_id)
            )
        except Exception:  # one organization's failure must not stop the others'
            _log.exception("retention sweep of organization %s failed", org_id)
            continue
        if found is not None:
            changed += sum(n for per in found.counts.values() for k, n in per.items() if k in {"archived", "deleted"})
    return changed

"""The steps of a retention run: which rows each policy (or the deletion of expired rows) names, counted in
a dry run, archived or deleted in bounded batches in a real one.

**Order.** A run first deletes expired memories, sessions and offloaded contexts (``expires_at`` passed
more than ``ENGRAM_EXPIRED_GRACE_DAYS`` ago), then applies its delete policies, target by target (memories,
messages, sessions, documents, jobs, access log, audit log, webhook deliveries; in each, the oldest policy
first), then its archive policies. Deletes come first, so a "delete archived memories after a year" policy
deletes only what was archived before this run, never what the run itself just archived.

**Batches.** A real step takes up to ``ENGRAM_RETENTION_BATCH_ROWS`` rows per transaction, locked with
``SKIP LOCKED`` (a row a request holds is left for the next run), walking the table once in key order, and
commits between batches: no lock is held for long, and a run stopped half-way keeps what it did. The legal
holds are read again in each batch, so a hold placed during a run stops it at the next batch.

**Dry runs count exactly.** A dry run counts each step in one read-only pass over the same conditions,
remembering in a temporary table the rows earlier steps would touch, so a later step counts what it would
find after them: not a row an earlier step deletes or archives, not a message whose session an earlier
step deletes, not the access log of a memory an earlier step deletes, and its ``keep_latest`` ranks only
what would be left. So a dry run's counts are the real run's, unless the data changes in between.

**Holds.** An organization-wide hold skips every delete step; a user's hold leaves out that user's rows
(memories, messages, sessions, documents, jobs, the access log of their memories). The audit log and the
webhook deliveries name no user reliably, so any active hold keeps them whole. Archiving deletes nothing
and goes on under a hold.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ColumnElement,
    MetaData,
    Select,
    Table,
    Text,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.services.core import visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.pseudonyms import among
from engramdb.services.core.runtime import Runtime
from engramdb.services.governance import purge
from engramdb.services.governance.holds import Holds
from engramdb.services.governance.holds import active as active_holds
from engramdb.storage import tables as t


@dataclass(frozen=True)
class Target:
    """A table retention can act on: ``stored`` is when a row was stored (the age basis); ``user`` and
    ``team`` say whether it carries those columns; ``reads`` what a batch reads of each row."""

    name: str
    table: Table
    stored: str
    user: bool = False
    team: bool = False
    reads: tuple[str, ...] = ("id",)


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("memories", t.memory, "created_at", user=True, team=True, reads=("id", "state")),
        Target("messages", t.message, "created_at", user=True, team=True, reads=("id", "created_at")),
        Target("sessions", t.session, "created_at", user=True, team=True),
        Target("documents", t.document, "created_at", user=True, reads=("id", "repository_id")),
        Target("jobs", t.job, "finished_at", user=True),
        Target("access_log", t.memory_access_log, "accessed_at", reads=tuple(c.name for c in t.memory_access_log.c)),
        Target("audit_log", t.audit_log, "created_at", reads=tuple(c.name for c in t.audit_log.c)),
        Target("webhook_deliveries", t.webhook_delivery, "created_at"),
        # Expired offloaded contexts only: no policy names them (RetentionTarget), so no policy step either.
        Target("contexts", t.offloaded_context, "created_at", user=True, team=True),
    )
}
EXPIRING = ("memories", "sessions", "contexts")  # the targets whose expired rows every run deletes
LOGS = frozenset({"audit_log", "access_log"})  # exported before they are deleted
_WHOLE_WHILE_HELD = frozenset({"audit_log", "webhook_deliveries"})


@dataclass(frozen=True)
class Step:
    """One step: a policy (its stored row), or with ``policy`` None the deletion of expired rows."""

    target: Target
    action: str
    name: str
    cutoff: datetime
    policy: dict[str, Any] | None = None

    @property
    def policy_id(self) -> uuid.UUID | None:
        return None if self.policy is None else self.policy["id"]

    def blocked(self, holds: Holds) -> str | None:
        """Why a hold stops this step, if one does."""
        if self.action != "delete":
            return None
        if holds.organization:
            return "legal hold on the organization"
        if holds.any and self.target.name in _WHOLE_WHILE_HELD:
            return f"legal hold: the {self.target.name} are kept whole while any hold is active"
        return None


@dataclass
class Report:
    """What a run did (or, dry, would do): rows per target and action, and each step's share."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def add(self, step: Step, rows: int, *, skipped: str | None = None, partitions: int = 0) -> None:
        done = "archived" if step.action == "archive" else "deleted"
        if rows:
            per = self.counts.setdefault(step.target.name, {})
            per[done] = per.get(done, 0) + rows
            if step.target.name in LOGS:
                per["exported"] = per.get("exported", 0) + rows
        if partitions:
            per = self.counts.setdefault(step.target.name, {})
            per["partitions_dropped"] = per.get("partitions_dropped", 0) + partitions
        self.steps.append(
            {
                "policy_id": step.policy_id,
                "name": step.name,
                "target": step.target.name,
                "action": step.action,
                "rows": rows,
                "skipped": skipped,
                "partitions_dropped": partitions,
            }
        )

    @property
    def rows(self) -> int:
        return sum(n for per in self.counts.values() for k, n in per.items() if k in {"archived", "deleted"})


def plan(policies: list[dict[str, Any]], now: datetime, *, expired_grace_days: int | None) -> list[Step]:
    """The steps of a run, in order: expired memories, sessions and contexts (unless ``expired_grace_days``
    is None), then ``policies``' deletes, target by target, then their archives."""
    steps: list[Step] = []
    if expired_grace_days is not None:
        cutoff = now - timedelta(days=expired_grace_days)
        steps += [Step(TARGETS[n], "delete", f"expired {n}", cutoff) for n in EXPIRING]
    order = list(TARGETS)
    ranked = sorted(policies, key=lambda p: (p["action"] != "delete", order.index(p["target"]), p["id"]))
    for p in ranked:
        steps.append(Step(TARGETS[p["target"]], p["action"], p["name"], now - timedelta(days=p["after_days"]), p))
    return steps


# --- which rows a step names ---------------------------------------------------------------------------

# A dry run's memory of the rows earlier steps would touch (``deleted`` false: archived).
_dry = Table(
    "retention_dry",
    MetaData(),
    Column("target", Text),
    Column("id", UUID(as_uuid=True)),
    Column("deleted", Boolean),
)
_DRY_TABLE = text(
    "CREATE TEMPORARY TABLE IF NOT EXISTS retention_dry "
    "(target text, id uuid, deleted boolean, PRIMARY KEY (target, id)) ON COMMIT DROP"
)


def _dry_ids(target: str, *, deleted_only: bool) -> Select[tuple[Any]]:
    query = select(_dry.c.id).where(_dry.c.target == target)
    return query.where(_dry.c.deleted) if deleted_only else query


def _gone(target: Target, table: Any) -> list[ColumnElement[bool]]:
    """In a dry run: rows earlier steps would delete, directly or with their session or memory."""
    conds = [table.c.id.not_in(_dry_ids(target.name, deleted_only=True))]
    if target.name == "messages":
        conds.append(table.c.session_id.not_in(_dry_ids("sessions", deleted_only=True)))
    if target.name == "access_log":
        conds.append(table.c.memory_id.not_in(_dry_ids("memories", deleted_only=True)))
    return conds


def _basis(step: Step) -> ColumnElement[Any]:
    table, policy = step.target.table, step.policy or {}
    if policy.get("basis") == "idle":
        last = "last_accessed_at" if step.target.name == "memories" else "last_message_at"
        return func.coalesce(table.c[last], table.c.created_at)
    if step.target.name == "jobs":
        return func.coalesce(table.c.finished_at, table.c.created_at)
    return table.c[step.target.stored]


def _scope(target: Target, policy: dict[str, Any], table: Any) -> list[ColumnElement[bool]]:
    """The policy's narrowing to an app, team, user or memory type (a team: rows filed under it, and the
    rows of its members, as a team-bound key sees them), on ``table`` (the target's table or an alias)."""
    conds: list[ColumnElement[bool]] = []
    for name in ("app_id", "user_id", "memory_type"):
        if policy.get(name) is not None:
            conds.append(table.c[name] == policy[name])
    team_id = policy.get("team_id")
    if team_id is not None:
        members = visibility.users(Caller(org_id=policy["org_id"], scopes=frozenset(), team_id=team_id))
        in_team = table.c.user_id.in_(members)
        conds.append(or_(table.c.team_id == team_id, in_team) if target.team else in_team)
    return conds


def _latest(step: Step, org_id: uuid.UUID, keep: int, *, dry: bool) -> Select[tuple[Any]]:
    """The ids of the newest ``keep`` rows of each user among those the policy narrows to (soft-deleted
    memories aside), which the step leaves whatever their age."""
    target, policy = step.target, step.policy or {}
    table = target.table.alias("ranked")  # not correlated with the step's own query of the table
    rank = func.row_number().over(
        partition_by=table.c.user_id, order_by=(table.c[target.stored].desc(), table.c.id.desc())
    )
    scope = _scope(target, policy, table)
    ranked = select(table.c.id.label("id"), rank.label("rank")).where(table.c.org_id == org_id, *scope)
    if target.name == "memories":
        ranked = ranked.where(table.c.state != "deleted")
    if dry:
        ranked = ranked.where(*_gone(target, table))
    inner = ranked.subquery()
    return select(inner.c.id).where(inner.c.rank <= keep)


def conditions(step: Step, org_id: uuid.UUID, holds: Holds, *, dry: bool = False) -> list[ColumnElement[bool]]:
    """The rows ``step`` names now, in ``org_id``: older than its cut-off, inside its narrowing, not held,
    not among the newest ``keep_latest``; in a dry run, not touched by an earlier step."""
    target, policy = step.target, step.policy
    table = target.table
    conds: list[ColumnElement[bool]] = [table.c.org_id == org_id]
    if policy is None:
        conds.append(table.c.expires_at <= step.cutoff)
    else:
        conds.append(_basis(step) < step.cutoff)
        conds += _scope(target, policy, table)
        if policy.get("state") is not None:
            conds.append(table.c.state == policy["state"])
        if step.action == "archive":
            conds.append(table.c.state.in_(("active", "paused")))
        if target.name == "jobs":
            conds.append(table.c.status.in_(("succeeded", "failed")))
        if target.name == "webhook_deliveries":
            conds.append(table.c.status != "pending")
        if policy.get("keep_latest"):
            conds.append(table.c.id.not_in(_latest(step, org_id, policy["keep_latest"], dry=dry)))
    if step.action == "delete" and holds.users:
        held = sorted(holds.users)
        if target.user:
            conds.append(or_(table.c.user_id.is_(None), ~among(table.c.user_id, held)))
        elif target.name == "access_log":
            mem = t.memory
            theirs = select(mem.c.id).where(mem.c.org_id == org_id, among(mem.c.user_id, held))
            conds.append(table.c.memory_id.not_in(theirs))
    if dry:
        conds.append(table.c.id.not_in(_dry_ids(target.name, deleted_only=False)))
        conds += _gone(target, table)[1:]
    return conds


# --- running the steps ---------------------------------------------------------------------------------


async def count(conn: AsyncConnection, org_id: uuid.UUID, steps: list[Step], report: Report) -> None:
    """A dry run, in ``conn``'s (tenant) transaction: count each step as the real run would find it."""
    await conn.execute(_DRY_TABLE)
    holds = await active_holds(conn, org_id)
    for step in steps:
        reason = step.blocked(holds)
        if reason is not None:
            report.add(step, 0, skipped=reason)
            continue
        table = step.target.table
        found = select(literal(step.target.name), table.c.id, literal(step.action == "delete"))
        stmt = insert(_dry).from_select(
            ["target", "id", "deleted"], found.where(*conditions(step, org_id, holds, dry=True))
        )
        touched = stmt.returning(_dry.c.id).cte("touched")
        report.add(step, (await conn.execute(select(func.count()).select_from(touched))).scalar_one())


Export = Callable[[Step, list[dict[str, Any]]], Awaitable[None]]


async def apply(rt: Runtime, caller: Caller, step: Step, report: Report, *, now: datetime, export: Export) -> None:
    """A real step, batch after batch, each in its own transaction, walking the table once in key order."""
    target = step.target
    table = target.table
    order = ("expires_at", "id") if step.policy is None else ("id",)
    reads = [table.c[c] for c in dict.fromkeys((*order, *target.reads))]
    batch = rt.settings.retention_batch_rows
    after: tuple[Any, ...] | None = None
    total, skipped = 0, None
    while True:
        async with rt.db.tenant(caller.org_id) as conn:
            holds = await active_holds(conn, caller.org_id)
            skipped = step.blocked(holds)
            if skipped is not None:
                break
            conds = conditions(step, caller.org_id, holds)
            if after is not None:
                conds.append(tuple_(*(table.c[c] for c in order)) > tuple_(*(literal(v) for v in after)))
            query = (
                select(*reads)
                .where(*conds)
                .order_by(*(table.c[c] for c in order))
                .limit(batch)
                .with_for_update(of=table, skip_locked=True)
            )
            rows = [dict(r) for r in (await conn.execute(query)).mappings()]
            if rows:
                total += await _act(conn, rt, caller, step, rows, now=now, export=export)
                after = tuple(rows[-1][c] for c in order)
        if len(rows) < batch:
            break
    report.add(step, total, skipped=skipped)


async def _act(
    conn: AsyncConnection,
    rt: Runtime,
    caller: Caller,
    step: Step,
    rows: list[dict[str, Any]],
    *,
    now: datetime,
    export: Export,
) -> int:
    name = step.target.name
    ids = [r["id"] for r in rows]
    if name == "memories" and step.action == "archive":
        return await purge.archive_memories(conn, caller, rows, now=now, reason=f"retention policy {step.name}")
    if name == "memories":
        reason = "expires_at" if step.policy is None else "retention_policy"
        return await purge.delete_memories(conn, rt, caller, ids, reason=reason, policy_id=step.policy_id)
    if name == "messages":
        return await purge.delete_messages(conn, caller, [(r["id"], r["created_at"]) for r in rows])
    if name == "sessions":
        return await purge.delete_sessions(conn, caller, ids)
    if name == "documents":
        return await purge.delete_documents(conn, caller, rows)
    if name == "jobs":
        return await purge.delete_jobs(conn, caller, ids)
    table = step.target.table
    if name in LOGS:
        await export(step, rows)  # written and synced before the delete commits
    keys = [tuple(r[c.name] for c in table.primary_key.columns if c.name != "org_id") for r in rows]
    return await purge.delete_keyed(conn, table, caller.org_id, keys)

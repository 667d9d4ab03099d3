"""Export: an organization's data, or one user's, as JSON Lines that ``services/governance/import_.py`` reads back.

The file is a header line, then one ``{"kind": …, "data": {…}}`` line per stored row, kinds in the order
of :data:`KINDS` (each row's references come before it), then an end record ``{"kind": "end",
"records": N}`` (``N`` the number of row records), written only once every row is: a file without it was
cut short, and an import refuses it. ``data`` holds the row's stored columns by their
database names, minus ``org_id`` (the importing key decides the organization) and the generated
full-text columns; ids, timestamps, versions, provenance and (unless left out) vectors are kept as
stored, so an import reproduces the rows exactly and searches over them score the same.

Not exported (:data:`NOT_EXPORTED`): API keys and webhook endpoints (secrets), the audit log, the memory
access log and webhook deliveries (a record of what happened here, not data), jobs (queue state), rate
limits, their counters and the request tally (this server's), retention policies, legal holds and the
reports of retention runs (the source's rules and records), and the organization row itself.

The rows are read in one REPEATABLE READ, read-only transaction (one consistent snapshot) in keyset
batches, so a large organization streams in bounded memory.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Column, ColumnElement, LargeBinary, Table, Text, cast, false, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb.errors import NotFound, PermissionDenied, ValidationFailed
from engramdb.schemas.export import END_KIND, EXPORT_KIND, EXPORT_VERSION
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy.directory import find_external_user
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.vector_type import Embedding

MEDIA_TYPE = "application/x-ndjson"
VECTOR_COLUMNS = frozenset({"embedding", "part_embeddings", "context_embedding", "embedding_model"})
_SKIPPED_COLUMNS = frozenset({"org_id", "search_tsv"})


@dataclass(frozen=True)
class Kind:
    """One kind of record: the table it comes from, its key (keyset order, and with ``org_id`` the primary
    key an import skips on), and its plural (the key of the import report)."""

    name: str
    plural: str
    table: Table
    keys: tuple[str, ...] = ("id",)
    conflict: tuple[str, ...] = ("id",)
    batch: int = 500  # rows per keyset query


KINDS: tuple[Kind, ...] = (
    Kind("team", "teams", t.team),
    Kind("user", "users", t.user_account),
    Kind("agent", "agents", t.agent),
    Kind("app", "apps", t.app),
    Kind("category", "categories", t.category),
    Kind("predicate", "predicates", t.predicate, ("name",), ("name",)),
    Kind("session", "sessions", t.session),
    Kind("message", "messages", t.message, conflict=("id", "created_at")),  # created_at: the partition key
    Kind("memory", "memories", t.memory),
    Kind("memory_history", "memory_history", t.memory_history),
    Kind("entity", "entities", t.entity),
    Kind("fact", "facts", t.fact),
    Kind("memory_entity", "memory_entities", t.memory_entity, ("memory_id", "entity_id"), ("memory_id", "entity_id")),
    Kind("narrative", "narratives", t.user_narrative),
    Kind("repository", "repositories", t.repository),
    Kind("document", "documents", t.document, batch=16),  # a document may hold 10 MiB of text
    Kind("chunk", "chunks", t.chunk),
)
KINDS_BY_NAME = {k.name: k for k in KINDS}
# Tenant tables deliberately left out, and why (a test checks every tenant table is in one list or the other).
NOT_EXPORTED = {
    "organization": "the importing key's organization receives the data",
    "api_key": "secrets: create new keys in the target",
    "audit_log": "what happened in the source organization, not data",
    "memory_access_log": "what happened in the source organization, not data",
    "job": "queue state of the source server",
    "idempotency_key": "recent requests' first answers, kept for replays on the source server",
    # Agents at work: coordination state (queues, leases, mailboxes), not memory; exporting it is left for
    # later (a task's result can be kept as a memory with remember: true, and that is exported).
    "task": "coordination state of the source server's agents, not memory (not exported yet)",
    "task_dependency": "coordination state of the source server's agents, not memory (not exported yet)",
    "task_event": "coordination state of the source server's agents, not memory (not exported yet)",
    "agent_message": "coordination state of the source server's agents, not memory (not exported yet)",
    "agent_message_delivery": "coordination state of the source server's agents, not memory (not exported yet)",
    "stream_seq": "the position counters of live streams on the source server",
    "webhook_endpoint": "holds signing secrets: set webhooks up again in the target",
    "webhook_delivery": "the delivery log and queue of the source server",
    "rate_limit": "the source server's limits: its operator's and admins' to set on each server",
    "rate_counter": "rate-limit counters of the source server",
    "request_tally": "requests made to the source server, not data",
    "document_upload": "content waiting for its background ingest on the source server (a document once done)",
    "retention_policy": "the source's rules: set them again in the target, where they would start deleting at once",
    "legal_hold": "the source's holds, which name its matters: a hold is placed by the target's admins",
    "retention_run": "reports of what retention did on the source server, not data",
    "access_grant": "who may see what on the source server: grants name its API keys (not exported); share anew",
    "offloaded_context": "agents' working state, offloaded for a while (it may belong to a task, and tasks are "
    "not exported); restore what should move and offload it in the target (not exported yet)",
    "decay_policy": "the source organization's half-lives, a setting: one PUT /v1/decay sets them in the target",
    "federated_session": "a session among organizations of the source server: they are not on the target",
    "federated_participant": "a participation in a source server's session, with the privacy budget it spent there",
    "federated_contribution": "the record of releases on the source server that counted this organization",
    "aggregated_insight": "noisy counts released on the source server, about its organizations, not this one's data",
}


def columns(kind: Kind, *, include_embeddings: bool = True) -> list[Column[Any]]:
    """The columns a record of ``kind`` carries, in table order."""
    return [
        c
        for c in kind.table.c
        if c.name not in _SKIPPED_COLUMNS and (include_embeddings or c.name not in VECTOR_COLUMNS)
    ]


@dataclass(frozen=True)
class ExportPlan:
    """What one export reads, decided (and authorised) before the first byte is sent."""

    org_id: uuid.UUID
    user_id: uuid.UUID | None
    external_id: str | None
    include_embeddings: bool
    model: str
    dimensions: int

    def file_name(self) -> str:
        who = f"user-{self.user_id}" if self.user_id else f"org-{self.org_id}"
        return f"engram-export-{who}.jsonl"


async def prepare(
    rt: Runtime,
    caller: Caller,
    *,
    user_id: uuid.UUID | None = None,
    external_user_id: str | None = None,
    include_embeddings: bool = True,
) -> ExportPlan:
    """Check what the caller may export and record the export in the audit log.

    The whole organization takes an admin key. One user's data takes an admin key, or a key bound to that
    user alone (not also to a team or an agent, which would see less than the user's whole data); such a
    key exports its own user when it names none, and naming another is ``403``."""
    caller.require("read")
    if user_id is not None and external_user_id is not None:
        raise ValidationFailed("name the user by user_id or by external_user_id, not both")
    if caller.bound and (caller.user_id is None or caller.team_id is not None or caller.agent_id is not None):
        raise PermissionDenied("only an admin key, or a key bound to one user alone, can export data")
    if not caller.bound:
        caller.require("admin")
    async with rt.db.tenant(caller.org_id) as conn:
        if external_user_id is not None:
            user_id = await find_external_user(conn, caller, external_user_id)
            if user_id is None and caller.user_id is None:
                raise NotFound(f"user with external_id {external_user_id!r} not found")
        if caller.user_id is not None:
            # Another user, existing or not, named by id or by external id: one answer, naming no id, so
            # a user-bound key learns neither who exists nor another user's id.
            if (user_id is None and external_user_id is not None) or user_id not in (None, caller.user_id):
                raise PermissionDenied("this API key is bound to another user")
            user_id = caller.user_id
        external_id = None
        if user_id is not None:
            u = t.user_account
            found = (
                await conn.execute(
                    select(u.c.id, u.c.external_id).where(u.c.org_id == caller.org_id, u.c.id == user_id)
                )
            ).first()
            if found is None:
                raise NotFound(f"user {user_id} not found")
            external_id = found.external_id
        details = {"include_embeddings": include_embeddings}
        if user_id is None:
            await audit.record(conn, caller, "data.exported", "organization", caller.org_id, details)
        else:
            await audit.record(conn, caller, "data.exported", "user", user_id, details)
    return ExportPlan(
        org_id=caller.org_id,
        user_id=user_id,
        external_id=external_id,
        include_embeddings=include_embeddings,
        model=rt.embedder.model,
        dimensions=rt.embedder.dimensions,
    )


async def stream(db: Database, plan: ExportPlan) -> AsyncIterator[bytes]:
    """The export file, a batch of lines at a time, from one consistent snapshot."""
    snapshot = Database(
        engine=db.engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True), url=db.url
    )
    async with snapshot.tenant(plan.org_id) as conn:
        exported_at: datetime = (await conn.execute(select(func.now()))).scalar_one()
        scope: dict[str, Any] = {"type": "org"}
        if plan.user_id is not None:
            scope = {"type": "user", "user_id": str(plan.user_id), "external_id": plan.external_id}
        header = {
            "kind": EXPORT_KIND,
            "version": EXPORT_VERSION,
            "org_id": str(plan.org_id),
            "scope": scope,
            "exported_at": exported_at.isoformat(),
            "embedding_model": plan.model,
            "dimensions": plan.dimensions,
            "include_embeddings": plan.include_embeddings,
        }
        yield _line(header)
        records = 0
        for kind in KINDS:
            async for batch in _batches(conn, kind, plan):
                records += len(batch)
                yield b"".join(_line({"kind": kind.name, "data": row}) for row in batch)
    # Only after the snapshot closed cleanly: a stream that breaks before this line has no end record.
    yield _line({"kind": END_KIND, "records": records})


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _select(column: Column[Any]) -> ColumnElement[Any]:
    """How a column is read for the file: vectors as their text (``[0.1,0.2]``, shortest exact digits,
    which is a JSON array), text search configurations by name."""
    if isinstance(column.type, Embedding | REGCONFIG):
        return cast(column, Text).label(column.name)
    if isinstance(column.type, t.VectorList):
        return cast(column, ARRAY(Text)).label(column.name)
    return column


def _encode(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, Embedding):
        return json.loads(value)
    if isinstance(column.type, t.VectorList):
        return [json.loads(v) for v in value]
    if isinstance(column.type, LargeBinary):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [str(v) if isinstance(v, uuid.UUID) else v for v in value]
    return value


async def _batches(conn: AsyncConnection, kind: Kind, plan: ExportPlan) -> AsyncIterator[list[dict[str, Any]]]:
    table = kind.table
    cols = columns(kind, include_embeddings=plan.include_embeddings)
    conds = [table.c.org_id == plan.org_id]
    if plan.user_id is not None:
        conds.append(user_scope(kind.name, plan.org_id, plan.user_id))
    keys = [table.c[k] for k in kind.keys]
    last: tuple[Any, ...] | None = None
    while True:
        query = select(*(_select(c) for c in cols)).where(*conds)
        if last is not None:
            query = query.where(keys[0] > last[0] if len(keys) == 1 else tuple_(*keys) > tuple_(*last))
        rows = (await conn.execute(query.order_by(*keys).limit(kind.batch))).mappings().all()
        if not rows:
            return
        yield [{c.name: _encode(c, row[c.name]) for c in cols} for row in rows]
        if len(rows) < kind.batch:
            return
        last = tuple(rows[-1][k] for k in kind.keys)


def user_scope(kind: str, org_id: uuid.UUID, user_id: uuid.UUID) -> ColumnElement[bool]:
    """The rows of ``kind`` that one user's export holds: the user's own rows, what hangs off them (their
    sessions' messages, their memories' history and entity links, their documents' chunks), and the
    shared rows those reference (their team, the agents, apps and teams their rows name, the categories
    their memories carry, the organization's definitions of the predicates their facts use, the
    organization's entities their facts and memories name)."""
    s, mem, f, me, a, d = t.session, t.memory, t.fact, t.memory_entity, t.agent, t.document

    def own(table: Table) -> ColumnElement[bool]:
        return (table.c.org_id == org_id) & (table.c.user_id == user_id)

    def named(target: Table, column: str, *sources: Table) -> list[ColumnElement[bool]]:
        """``target`` rows whose id the user's rows in ``sources`` hold in ``column``."""
        return [target.c.id.in_(select(src.c[column]).where(own(src), src.c[column].is_not(None))) for src in sources]

    own_memories = select(mem.c.id).where(own(mem))
    if kind == "user":
        return t.user_account.c.id == user_id
    if kind in {"session", "memory", "fact", "narrative", "repository", "document"}:
        return KINDS_BY_NAME[kind].table.c.user_id == user_id
    if kind == "message":
        return t.message.c.session_id.in_(select(s.c.id).where(own(s)))
    if kind in {"memory_history", "memory_entity"}:
        return KINDS_BY_NAME[kind].table.c.memory_id.in_(own_memories)
    if kind == "chunk":
        return t.chunk.c.document_id.in_(select(d.c.id).where(own(d)))
    if kind == "category":
        return t.category.c.name.in_(select(func.unnest(mem.c.categories)).where(own(mem)))
    if kind == "predicate":
        return t.predicate.c.name.in_(select(f.c.predicate).where(own(f)))
    if kind == "entity":
        e = t.entity
        return or_(
            e.c.user_id == user_id,
            e.c.id.in_(select(f.c.subject_id).where(own(f))),
            e.c.id.in_(select(f.c.object_id).where(own(f), f.c.object_id.is_not(None))),
            e.c.id.in_(select(me.c.entity_id).where(me.c.org_id == org_id, me.c.memory_id.in_(own_memories))),
        )
    agents = or_(a.c.user_id == user_id, *named(a, "agent_id", s, mem, t.repository, d))
    if kind == "agent":
        return agents
    if kind == "app":
        return or_(false(), *named(t.app, "app_id", s, mem, t.repository, d))
    if kind == "team":
        tm, u = t.team, t.user_account
        return or_(
            tm.c.id.in_(select(u.c.team_id).where(u.c.org_id == org_id, u.c.id == user_id)),
            *named(tm, "team_id", s, mem),
            tm.c.id.in_(select(a.c.team_id).where(a.c.org_id == org_id, agents, a.c.team_id.is_not(None))),
        )
    raise ValueError(f"no user scope for {kind!r}")  # pragma: no cover - every kind is listed above

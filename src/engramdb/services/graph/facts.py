"""Bi-temporal facts: subject–predicate–object versions that are never overwritten.

Event time (``valid_from`` / ``valid_until``) says when a fact held in the world; system time
(``recorded_at`` / ``superseded_at``) says when Engram believed a version. A new object for a
single-valued predicate (``lives_in``) INVALIDATEs the open fact: that version is superseded and a
closed copy (``valid_until`` = the new fact's ``valid_from``) is recorded, so "what was true on D" and
"what did we believe on D" both keep their answers. A repeat is a NOOP that adds provenance and weight.
Which predicates are single-valued is the organization's predicate catalogue (``predicates.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.errors import PermissionDenied
from engramdb.providers.extraction import EntityCandidate, FactCandidate
from engramdb.schemas.common import Page
from engramdb.schemas.graph import Fact, FactCreate, FactFilters, FactResult
from engramdb.services.core import audit, events, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.graph import entities, predicates
from engramdb.services.tenancy.directory import resolve_user
from engramdb.storage import tables as t
from engramdb.storage.filters import matching
from engramdb.storage.repo import one_or_404, page_by_id, public_columns

f = t.fact
Action = Literal["ADD", "NOOP", "INVALIDATE"]


def statement(subject: str, predicate: str, obj: str) -> str:
    return f"{subject} {predicate.replace('_', ' ')} {obj}"


normalize_predicate = predicates.normalize


@dataclass
class Scope:
    """Where a fact lives and where it came from."""

    org_id: uuid.UUID
    user_id: uuid.UUID | None
    agent_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    source: str = "api"
    extractor: str | None = None
    occurred_at: datetime | None = None  # the message's time: the default valid_from
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recorded:
    fact_id: uuid.UUID
    action: Action
    invalidated: list[uuid.UUID]


async def record(
    conn: AsyncConnection,
    rt: Runtime,
    scope: Scope,
    cand: FactCandidate,
    *,
    subject_id: uuid.UUID,
    object_id: uuid.UUID | None,
    vector: list[float],
) -> Recorded:
    """Consolidate one fact into what is believed now (see the module docstring)."""
    predicate = normalize_predicate(cand.predicate)
    valid_from = cand.valid_from or scope.occurred_at
    if cand.valid_until is not None and valid_from is not None and cand.valid_until < valid_from:
        # "Lost my job yesterday": it held until then; when it began is unknown (not when it was said).
        valid_from = cand.valid_from if cand.valid_from and cand.valid_from <= cand.valid_until else None
    # One writer at a time per subject and predicate (the row lock below may match no row at all).
    lock_key = f"fact:{scope.org_id}:{subject_id}:{predicate}"
    await conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(lock_key, 0))))
    current = [
        dict(r)
        for r in (
            await conn.execute(
                select(f)
                .where(
                    f.c.org_id == scope.org_id,
                    f.c.subject_id == subject_id,
                    f.c.predicate == predicate,
                    f.c.superseded_at.is_(None),
                )
                .order_by(f.c.recorded_at)
                .with_for_update()
            )
        ).mappings()
    ]
    same = [r for r in current if entities.normalize(r["object"]) == entities.normalize(cand.object)]
    for hit in same:
        action = _repeat(hit, valid_from, cand.valid_until)
        if action is None:
            continue
        ids_ = list(dict.fromkeys([*hit["source_message_ids"], *cand.message_ids]))
        await conn.execute(
            update(f)
            .where(f.c.org_id == scope.org_id, f.c.id == hit["id"])
            .values(
                weight=f.c.weight + 1,
                source_message_ids=ids_,
                confidence=func.greatest(f.c.confidence, cand.confidence),
            )
        )
        if action == "close" and cand.valid_until is not None:
            # "I don't live in Lisbon any more": the open fact is closed, nothing new is asserted.
            closed = await _close(conn, rt, scope, hit, cand.valid_until, invalidated_by=None)
            return Recorded(closed, "INVALIDATE", [hit["id"]])
        return Recorded(hit["id"], "NOOP", [])
    new_id = ids.uuid7()
    invalidated: list[uuid.UUID] = []
    valid_until = cand.valid_until
    if cand.single_valued and cand.valid_until is None:
        # A closed candidate (a stay that ended) contradicts nothing current; an open one replaces what holds.
        for old in current:
            if old["valid_until"] is not None or old in same:
                continue
            old_start = old["valid_from"] or old["recorded_at"]
            if valid_from is not None and valid_from < old_start:
                # Older news arriving late (an import out of order): the new fact ended when the old began.
                valid_until = old_start if valid_until is None else min(valid_until, old_start)
                continue
            valid_from = valid_from or datetime.now(UTC)  # undated: it holds from now on
            await _close(conn, rt, scope, old, valid_from, invalidated_by=new_id)
            invalidated.append(old["id"])
    await conn.execute(
        insert(f).values(
            org_id=scope.org_id,
            id=new_id,
            user_id=scope.user_id,
            agent_id=scope.agent_id,
            session_id=scope.session_id,
            subject_id=subject_id,
            object_id=object_id,
            subject=cand.subject,
            predicate=predicate,
            object=cand.object,
            statement=statement(cand.subject, predicate, cand.object),
            confidence=cand.confidence,
            single_valued=cand.single_valued,
            weight=1,
            valid_from=valid_from,
            valid_until=valid_until,
            source=scope.source,
            extractor=scope.extractor,
            speaker=cand.speaker,
            source_message_ids=list(cand.message_ids),
            metadata=scope.metadata,
            embedding=vector,
            embedding_model=rt.embedder.model,
            language=rt.settings.search_language,
        )
    )
    return Recorded(new_id, "INVALIDATE" if invalidated else "ADD", invalidated)


def _repeat(row: dict[str, Any], start: datetime | None, until: datetime | None) -> str | None:
    """Whether a candidate with this object repeats ``row`` ("noop"), ends it ("close"), or neither (None:
    another stay, recorded on its own)."""
    begun = row["valid_from"]
    if row["valid_until"] is None:
        if until is None:
            return "noop"  # still true: a repeat, whenever the candidate says it began
        return "close" if begun is None or until > begun else None  # it ended; or an earlier, separate stay
    # ``row`` is closed: a repeat only if the candidate falls inside it (a later stay is a move back).
    inside = start is not None and (begun is None or begun <= start) and start < row["valid_until"]
    return "noop" if inside and (until is None or until <= row["valid_until"]) else None


async def _close(
    conn: AsyncConnection,
    rt: Runtime,
    scope: Scope,
    old: dict[str, Any],
    until: datetime,
    *,
    invalidated_by: uuid.UUID | None,
) -> uuid.UUID:
    """Supersede ``old`` and record a copy whose validity ends at ``until``."""
    if old["valid_from"] is not None and until < old["valid_from"]:
        until = old["valid_from"]
    await conn.execute(
        update(f).where(f.c.org_id == scope.org_id, f.c.id == old["id"]).values(superseded_at=func.now())
    )
    copy = {k: v for k, v in old.items() if k not in {"search_tsv", "superseded_at", "recorded_at"}}
    copy.update(id=ids.uuid7(), valid_until=until, replaces_id=old["id"], invalidated_by=invalidated_by)
    closed = (await conn.execute(insert(f).values(**copy).returning(*public_columns(f)))).mappings().one()
    data = {"object": "fact", "action": "closed", "fact": _public(dict(closed))}
    await events.emit(conn, org_id=scope.org_id, event_type="memory.invalidated", data=data)
    return uuid.UUID(str(copy["id"]))


# --- the API -------------------------------------------------------------------------------------------


def _public(row: dict[str, Any]) -> Fact:
    return Fact.model_validate(row)


async def create(rt: Runtime, caller: Caller, body: FactCreate) -> FactResult:
    """A caller-supplied triple, consolidated exactly like an extracted one."""
    caller.require("write")
    predicate = normalize_predicate(body.predicate)
    names = [body.subject, body.object] if body.object_is_entity else [body.subject]
    vectors = await rt.embedder.embed_batch([*names, statement(body.subject, predicate, body.object)], kind="passage")
    async with rt.db.tenant(caller.org_id) as conn:
        target = visibility.WriteTarget("facts")
        user_id = caller.bind(
            "user_id",
            await resolve_user(
                conn, caller, user_id=body.user_id, external_user_id=body.external_user_id, target=target
            ),
        )
        agent_id = caller.bind("agent_id", body.agent_id)
        # The user is one of the team's, or one a write grant reaches (resolve_user checked which).
        if caller.team_id is not None and user_id is None:
            raise PermissionDenied("this API key is bound to a team: name a user of that team")
        if agent_id is not None:
            await one_or_404(
                conn,
                select(t.agent.c.id).where(t.agent.c.org_id == caller.org_id, t.agent.c.id == agent_id),
                "agent",
                agent_id,
            )
        await visibility.confine_write(conn, caller, user_id=user_id, agent_id=agent_id, target=target)
        cands = [EntityCandidate(body.subject, body.subject_type)]
        if body.object_is_entity:
            cands.append(EntityCandidate(body.object, body.object_type))
        resolved = await entities.resolve(conn, rt, caller.org_id, user_id, cands, vectors[: len(cands)])
        single = body.single_valued
        if single is None:  # the predicate's cardinality in the organization's catalogue decides
            single = bool(await predicates.single_valued(conn, caller.org_id, predicate))
        cand = FactCandidate(
            subject=body.subject,
            predicate=predicate,
            object=body.object,
            message_ids=(),
            object_is_entity=body.object_is_entity,
            confidence=body.confidence,
            single_valued=single,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
        )
        scope = Scope(caller.org_id, user_id, agent_id, metadata=body.metadata)
        done = await record(
            conn,
            rt,
            scope,
            cand,
            subject_id=resolved[entities.normalize(body.subject)],
            object_id=resolved[entities.normalize(body.object)] if body.object_is_entity else None,
            vector=vectors[-1],
        )
        row = await one_or_404(
            conn,
            select(*public_columns(f)).where(f.c.org_id == caller.org_id, f.c.id == done.fact_id),
            "fact",
            done.fact_id,
        )
        await audit.record(
            conn, caller, f"fact.{done.action.lower()}", "fact", done.fact_id, {"statement": row["statement"]}
        )
    return FactResult(fact=_public(row), action=done.action, invalidated=done.invalidated)


def as_of(*, valid_at: datetime | None, known_at: datetime | None) -> list[ColumnElement[bool]]:
    """Conditions for the versions believed at ``known_at`` (now when None) that held at ``valid_at``."""
    if known_at is None:
        conds: list[ColumnElement[bool]] = [f.c.superseded_at.is_(None)]
    else:
        conds = [f.c.recorded_at <= known_at, or_(f.c.superseded_at.is_(None), f.c.superseded_at > known_at)]
    if valid_at is not None:
        conds += [
            or_(f.c.valid_from.is_(None), f.c.valid_from <= valid_at),
            or_(f.c.valid_until.is_(None), f.c.valid_until > valid_at),
        ]
    return conds


async def list_facts(rt: Runtime, caller: Caller, q: FactFilters) -> Page[Fact]:
    """Facts newest first. Without ``include_history`` only the versions believed at ``known_at``."""
    caller.require("read")
    conds = visibility.facts(caller) + matching(f, q, equal=("user_id",))
    if not q.include_history:
        conds += as_of(valid_at=q.valid_at, known_at=q.known_at)
    if q.predicate is not None:
        conds.append(f.c.predicate == normalize_predicate(q.predicate))
    async with rt.db.tenant(caller.org_id) as conn:
        if q.entity_id is not None:
            await entities.fetch(conn, caller, q.entity_id)
            conds.append(or_(f.c.subject_id == q.entity_id, f.c.object_id == q.entity_id))
        if q.subject is not None:
            key = entities.normalize(q.subject)
            e = t.entity
            subjects = select(e.c.id).where(
                *visibility.entities(caller), or_(e.c.normalized_name == key, e.c.alias_keys.contains([key]))
            )
            conds.append(f.c.subject_id.in_(subjects))
        rows, next_cursor = await page_by_id(
            conn, select(*public_columns(f)).where(*conds), f, cursor=q.cursor, limit=q.limit
        )
    return Page[Fact](data=[_public(r) for r in rows], next_cursor=next_cursor)


async def get(rt: Runtime, caller: Caller, fact_id: uuid.UUID) -> Fact:
    caller.require("read")
    async with rt.db.tenant(caller.org_id) as conn:
        row = await one_or_404(
            conn, select(*public_columns(f)).where(*visibility.facts(caller), f.c.id == fact_id), "fact", fact_id
        )
    return _public(row)


async def retract(rt: Runtime, caller: Caller, fact_id: uuid.UUID) -> Fact:
    """Stop believing a fact (system time): it stays in history, answered by ``known_at`` before now."""
    caller.require("write")
    async with rt.db.tenant(caller.org_id) as conn:
        await one_or_404(
            conn,
            select(f.c.id).where(*visibility.facts(caller, write=True), f.c.id == fact_id).with_for_update(),
            "fact",
            fact_id,
        )
        result = await conn.execute(
            update(f)
            .where(f.c.org_id == caller.org_id, f.c.id == fact_id, f.c.superseded_at.is_(None))
            .values(superseded_at=func.now())
            .returning(*public_columns(f))
        )
        found = result.mappings().first()
        row = (
            dict(found)
            if found is not None
            else await one_or_404(
                conn, select(*public_columns(f)).where(f.c.org_id == caller.org_id, f.c.id == fact_id), "fact", fact_id
            )
        )
        await audit.record(conn, caller, "fact.retracted", "fact", fact_id, {})
        if found is not None:
            data = {"object": "fact", "action": "retracted", "fact": _public(row)}
            await events.emit(conn, org_id=caller.org_id, event_type="memory.invalidated", data=data)
    return _public(row)


def current_now() -> list[ColumnElement[bool]]:
    """Facts believed now and valid now."""
    now = func.now()
    return [
        f.c.superseded_at.is_(None),
        or_(f.c.valid_from.is_(None), f.c.valid_from <= now),
        or_(f.c.valid_until.is_(None), f.c.valid_until > now),
    ]

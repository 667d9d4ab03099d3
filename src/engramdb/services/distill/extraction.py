"""The extraction job: a session's new messages become memories, facts and entities, and its summary.

Runs in the background (``engramdb.jobs``), one job at a time per session. It reads the messages after
the session's ``extracted_seq`` watermark, lets the extractor propose candidates and the summarizer
extend the summary (model and LLM calls happen outside any transaction), then consolidates everything
and moves the watermark in one transaction. So a job killed at any point has either done all of a
batch or none of it, and its retry starts where the last committed batch ended: nothing is lost and
nothing is extracted twice.

Every write is audited in that transaction, with the API's action names (``memory.created``,
``memory.updated``, ``memory.reinforced``, ``fact.add``, ``fact.noop``, ``fact.invalidate``,
``entity.created``, ``entity.updated``), actor ``extractor:<provider>`` and request id ``job:<id>``; a
retry audits only what it writes, and a candidate the database refuses leaves no row.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import DataError, IntegrityError

from engramdb.providers.extraction import (
    INJECTED_OPEN,
    EntityCandidate,
    Extraction,
    Turn,
    Usage,
    strip_injected,
)
from engramdb.services.core import audit, jobs
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.distill.consolidation import Owner, consolidate
from engramdb.services.graph import entities, facts, predicates
from engramdb.services.memory import categories
from engramdb.storage import tables as t

_log = logging.getLogger("engramdb.extraction")
s = t.session
m = t.message

BATCH = 40  # messages per extractor call and per transaction
CONTEXT_TURNS = 4  # earlier turns given to the extractor for reference
SUMMARY_CHARS = 2_000
OFFLINE_ROLES = frozenset({"user"})  # rules read people's own statements; an assistant's "I" is not a person
LLM_ROLES = frozenset({"user", "assistant"})


class SessionMoved(Exception):
    """Another job moved the watermark meanwhile (only after a lost lock): start the batch again."""


@dataclass
class Totals:
    messages: int = 0
    batches: int = 0
    counts: Counter[str] | None = None
    rejected: list[str] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"messages": self.messages, "batches": self.batches}
        out.update(sorted((self.counts or Counter()).items()))
        if self.rejected:
            out["rejected_examples"] = self.rejected
        return out


def _extractable(metadata: dict[str, Any]) -> bool:
    """A message is left out of extraction for good with ``metadata.engram_extract = false``."""
    return metadata.get("engram_extract", True) is not False and not metadata.get("engram_injected")


def _turn(row: Any, user_name: str | None) -> Turn:
    """A message as the extractor sees it; a user's unnamed turn is attributed to the session's user."""
    name = row.name or (user_name if row.role == "user" else None)
    return Turn(id=row.id, role=row.role, name=name, content=strip_injected(row.content), occurred_at=row.occurred_at)


async def run(rt: Runtime, org_id: uuid.UUID, job_id: uuid.UUID, *, attempt: int, final: bool) -> dict[str, Any] | None:
    """Run job ``job_id`` (attempt ``attempt``). Raises on failure, after recording it on the job row."""
    intel = rt.intelligence
    provider = intel.extractor.name if intel.extractor else intel.summarizer.name

    async def work(job: dict[str, Any]) -> dict[str, Any]:
        totals = Totals(counts=Counter())
        while not (await _batch(rt, org_id, job_id, job["session_id"], totals, provider))[0]:
            pass
        return totals.result()

    return await jobs.execute(rt.db, org_id, job_id, attempt=attempt, final=final, provider=provider, work=work)


@dataclass
class _Batch:
    """A session's next messages, read in one transaction."""

    sess: dict[str, Any]
    rows: list[Any]
    earlier: list[Any]
    categories: dict[str, str]
    speakers: dict[uuid.UUID, str]  # user id -> the name an unnamed user turn is attributed to


async def _read(rt: Runtime, org_id: uuid.UUID, session_id: uuid.UUID) -> _Batch | None:
    async with rt.db.tenant(org_id) as conn:
        sess = (await conn.execute(select(s).where(s.c.org_id == org_id, s.c.id == session_id))).mappings().first()
        if sess is None:
            return None
        watermark = sess["extracted_seq"]
        cols = (m.c.id, m.c.seq, m.c.role, m.c.name, m.c.content, m.c.occurred_at, m.c.metadata, m.c.user_id)
        base = (m.c.org_id == org_id, m.c.session_id == session_id)
        rows = (
            await conn.execute(select(*cols).where(*base, m.c.seq > watermark).order_by(m.c.seq).limit(BATCH))
        ).all()
        earlier = (
            await conn.execute(
                select(*cols).where(*base, m.c.seq <= watermark).order_by(m.c.seq.desc()).limit(CONTEXT_TURNS)
            )
        ).all()
        u = t.user_account
        user_ids = {r.user_id for r in [*rows, *earlier] if r.user_id is not None}
        found = (
            await conn.execute(
                select(u.c.id, u.c.display_name, u.c.external_id).where(u.c.org_id == org_id, u.c.id.in_(user_ids))
            )
        ).all()
        return _Batch(
            dict(sess),
            list(rows),
            list(reversed(earlier)),
            await categories.all_categories(conn, org_id),
            {r.id: r.display_name or r.external_id for r in found},
        )


async def _batch(
    rt: Runtime, org_id: uuid.UUID, job_id: uuid.UUID, session_id: uuid.UUID, totals: Totals, provider: str
) -> tuple[bool, Usage]:
    """One batch; returns (finished, tokens spent). The job row is marked succeeded with the last one.

    Each message's candidates belong to the message's own user (a session can hold several speakers'
    messages), so the extractor runs once per user of the batch."""
    intel = rt.intelligence
    batch = await _read(rt, org_id, session_id)
    if batch is None or not batch.rows:
        async with rt.db.tenant(org_id) as conn:
            result = totals.result() if batch else {**totals.result(), "skipped": "session deleted"}
            await jobs.succeed(conn, org_id, job_id, result, provider=provider, usage=Usage())
        return True, Usage()
    sess = batch.sess

    def turn(row: Any) -> Turn:
        return _turn(row, batch.speakers.get(row.user_id))

    roles = OFFLINE_ROLES if intel.offline else LLM_ROLES
    kept = [r for r in batch.rows if r.role in LLM_ROLES and _extractable(r.metadata or {})]
    turns = [turn(r) for r in kept]
    context = [turn(r) for r in batch.earlier if r.role in LLM_ROLES]
    groups: dict[uuid.UUID | None, list[Turn]] = {}
    for row, each in zip(kept, turns, strict=True):
        if each.role in roles and each.content:
            groups.setdefault(row.user_id, []).append(each)
    spent = Usage()
    prepared: list[tuple[uuid.UUID | None, Prepared]] = []
    occurred = {each.id: each for each in turns}
    for user_id, wanted in groups.items():
        if intel.extractor is None:
            break
        extraction = await intel.extractor.extract(wanted, context=context, categories=list(batch.categories))
        spent = spent + extraction.usage
        prepared.append((user_id, await _prepare(rt, extraction, batch.categories, occurred)))
    summary = sess["summary"]
    summarizable = [each for each in turns if each.content and INJECTED_OPEN not in each.content]
    if summarizable:
        summary, used = await intel.summarizer.summarize(sess["summary"], summarizable, max_chars=SUMMARY_CHARS)
        spent = spent + used
    finished = len(batch.rows) < BATCH
    async with rt.db.tenant(org_id) as conn:
        locked = await conn.scalar(
            select(s.c.extracted_seq).where(s.c.org_id == org_id, s.c.id == session_id).with_for_update()
        )
        if locked != sess["extracted_seq"]:
            raise SessionMoved(f"session {session_id} was extracted by another job meanwhile")
        caller = Caller(
            org_id=org_id, scopes=frozenset({"admin"}), actor=f"extractor:{provider}", request_id=f"job:{job_id}"
        )
        assert totals.counts is not None
        for user_id, ready in prepared:
            totals.counts.update(await _store(conn, rt, caller, sess, user_id, ready, provider, totals.rejected))
        totals.messages += len(batch.rows)
        totals.batches += 1
        last_seq = batch.rows[-1].seq
        await conn.execute(
            update(s)
            .where(s.c.org_id == org_id, s.c.id == session_id)
            .values(
                extracted_seq=last_seq, summary=summary or None, summary_seq=last_seq, summary_updated_at=func.now()
            )
        )
        if finished:
            await jobs.succeed(conn, org_id, job_id, totals.result(), provider=provider, usage=spent)
        else:
            await jobs.progress(conn, org_id, job_id, totals.result(), usage=spent)
    return finished, spent


@dataclass
class Prepared:
    """Candidates with everything that needs the model computed outside the transaction."""

    extraction: Extraction
    entities: list[EntityCandidate]
    entity_vectors: list[list[float]]
    memory_vectors: list[list[float]]
    memory_categories: list[list[str]]
    fact_vectors: list[list[float]]
    occurred: dict[uuid.UUID, Any]


def _entity_candidates(extraction: Extraction) -> list[EntityCandidate]:
    """Every entity the candidates name, once per normalized name (a typed mention beats 'other')."""
    found: dict[str, EntityCandidate] = {}

    def add(cand: EntityCandidate) -> None:
        key = entities.normalize(cand.name)
        if not key:
            return
        old = found.get(key)
        if old is None or (old.type == "other" and cand.type != "other"):
            aliases = tuple(dict.fromkeys([*(old.aliases if old else ()), *cand.aliases]))
            found[key] = EntityCandidate(cand.name, cand.type, aliases)
        elif cand.aliases:
            found[key] = EntityCandidate(old.name, old.type, tuple(dict.fromkeys([*old.aliases, *cand.aliases])))

    for ent in extraction.entities:
        add(ent)
    for fact in extraction.facts:
        add(EntityCandidate(fact.subject, fact.subject_type))
        if fact.object_is_entity:
            add(EntityCandidate(fact.object, fact.object_type))
    return list(found.values())


async def _prepare(
    rt: Runtime, extraction: Extraction, names: dict[str, str], turns: dict[uuid.UUID, Turn]
) -> Prepared:
    ents = _entity_candidates(extraction)
    mems = extraction.memories
    texts = (
        [e.name for e in ents]
        + [c.content for c in mems]
        + [facts.statement(f.subject, facts.normalize_predicate(f.predicate), f.object) for f in extraction.facts]
    )
    vectors = await rt.embedder.embed_batch(texts, kind="passage") if texts else []
    n_e, n_m = len(ents), len(mems)
    memory_vectors = vectors[n_e : n_e + n_m]
    guessed = await categories.assign(rt, names, memory_vectors)
    chosen = [[c for c in cand.categories if c in names] or guess for cand, guess in zip(mems, guessed, strict=True)]
    occurred = {turn_id: turn.occurred_at for turn_id, turn in turns.items()}
    return Prepared(extraction, ents, vectors[:n_e], memory_vectors, chosen, vectors[n_e + n_m :], occurred)


async def _store(
    conn: Any,
    rt: Runtime,
    caller: Caller,
    sess: dict[str, Any],
    user_id: uuid.UUID | None,
    p: Prepared,
    provider: str,
    rejected: list[str],
) -> Counter[str]:
    """Consolidate a batch's candidates; each in a savepoint, so one the database refuses is left out."""
    counts: Counter[str] = Counter()
    org_id = caller.org_id
    resolved = await entities.resolve(conn, rt, org_id, user_id, p.entities, p.entity_vectors)
    await _audit_entities(conn, caller, resolved)
    counts["entities"] += len(p.entities)
    # The organization's predicate catalogue decides what is single-valued; a predicate it does not name
    # keeps the extractor's guess.
    known = await predicates.catalogue(conn, org_id)
    for cand, vector in zip(p.extraction.facts, p.fact_vectors, strict=True):
        single = known.get(facts.normalize_predicate(cand.predicate))
        if single is not None and single != cand.single_valued:
            cand = replace(cand, single_valued=single)
        subject_id = resolved.get(entities.normalize(cand.subject))
        if subject_id is None:
            continue
        object_id = resolved.get(entities.normalize(cand.object)) if cand.object_is_entity else None
        first = next((p.occurred[mid] for mid in cand.message_ids if mid in p.occurred), None)
        scope = facts.Scope(
            org_id,
            user_id,
            sess["agent_id"],
            sess["id"],
            source="extraction",
            extractor=provider,
            occurred_at=first,
        )
        try:
            async with conn.begin_nested():
                done = await facts.record(
                    conn, rt, scope, cand, subject_id=subject_id, object_id=object_id, vector=vector
                )
                await _audit_fact(conn, caller, done)
        except (IntegrityError, DataError) as exc:
            _reject(counts, rejected, f"fact {facts.statement(cand.subject, cand.predicate, cand.object)!r}", exc)
            continue
        counts[f"facts_{done.action.lower()}"] += 1
    owner = Owner(sess["team_id"], user_id, sess["agent_id"], sess["app_id"], sess["id"])
    for memo, vector, cats in zip(p.extraction.memories, p.memory_vectors, p.memory_categories, strict=True):
        try:
            async with conn.begin_nested():
                outcome = await consolidate(conn, rt, caller, owner, memo, vector, categories=cats, extractor=provider)
                names = [*memo.entities, *([memo.speaker] if memo.speaker else [])]
                linked = {resolved[k] for k in (entities.normalize(n) for n in names) if k in resolved}
                await entities.link_memory(conn, org_id, outcome.memory_id, linked)
        except (IntegrityError, DataError) as exc:
            _reject(counts, rejected, f"memory {memo.content[:80]!r}", exc)
            continue
        counts[f"memories_{outcome.action.lower()}"] += 1
    return counts


async def _audit_entities(conn: Any, caller: Caller, resolved: entities.Resolved) -> None:
    """Audit rows for the entities a batch created or enriched (a mention that only counts is none)."""
    for entity_id, name in resolved.created.items():
        await audit.record(conn, caller, "entity.created", "entity", entity_id, {"name": name})
    for entity_id, fields in resolved.enriched.items():
        await audit.record(conn, caller, "entity.updated", "entity", entity_id, {"fields": fields})


async def _audit_fact(conn: Any, caller: Caller, done: facts.Recorded) -> None:
    """The audit row ``POST /v1/facts`` writes (``fact.add``, ``fact.noop``, ``fact.invalidate``), with the
    facts it closed; in the candidate's savepoint, so a refused candidate leaves none."""
    f = t.fact
    statement = await conn.scalar(select(f.c.statement).where(f.c.org_id == caller.org_id, f.c.id == done.fact_id))
    details: dict[str, Any] = {"statement": statement}
    if done.invalidated:
        details["invalidated"] = [str(i) for i in done.invalidated]
    await audit.record(conn, caller, f"fact.{done.action.lower()}", "fact", done.fact_id, details)


def _reject(counts: Counter[str], rejected: list[str], what: str, exc: Exception) -> None:
    """A candidate the database refuses is left out of the batch (and said so on the job), so one bad
    candidate cannot hold up every message of its session."""
    counts["rejected"] += 1
    if len(rejected) < 10:
        rejected.append(f"{what}: {str(getattr(exc, 'orig', exc)).splitlines()[0]}")
    _log.warning("extraction left out %s: %s", what, exc)

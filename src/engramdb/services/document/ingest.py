"""Ingest: how a document's content becomes chunks and vectors, re-embedding only what changed.

Every write of a document's content (JSON, upload, PATCH, repository sync) goes through one pipeline,
:func:`ingest_many`, so that a re-ingest costs only what changed:

1. the bytes are typed, parsed and chunked (CPU work, in a thread); bytes identical to those stored, of
   the same type, skip even that;
2. the document's stored chunks are read and each new chunk is paired with an old one: the same
   embedding text keeps the old row and its vector; the same text under other headings (or another
   title) keeps the row id and is embedded again; the rest are new rows, and unpaired old rows go;
3. only the missing vectors are computed, before any transaction opens (no row is locked while the
   model runs);
4. everything of one document is written in one transaction, after checking that the document did not
   change since step 2; if it did, that document is planned again (``ATTEMPTS`` times, then 409).

A chunk's ``content_hash`` is the SHA-256 of the text it was embedded as (``chunk_embedding_text``:
path, title, headings and its own text), so a vector is reused exactly when it would come out the same.
A document's ``content_hash`` is the SHA-256 of its bytes as received, which a client can compare
before sending a file again.

kept whole because the four steps share one private plan per document (``_Plan``, ``_Piece``): split, the
plan would become a public type that only this pipeline may build (about 500 lines).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids, limits
from engramdb.errors import (
    Conflict,
    EmptyContent,
    EngramError,
    NotFound,
    PayloadTooLarge,
    UnsupportedContent,
    ValidationFailed,
)
from engramdb.providers.documents import (
    ContentType,
    chunk_document,
    chunk_embedding_text,
    detect_content_type,
    parse,
)
from engramdb.schemas.documents import (
    Action,
    ChunkCounts,
    Document,
    DocumentFields,
    DocumentResult,
)
from engramdb.services.core import audit, events, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.document.repositories import document_scope
from engramdb.storage import tables as t

_log = logging.getLogger("engramdb.ingest")
doc = t.document
chk = t.chunk
EMBED_BATCH = 64
ATTEMPTS = 3
# Why a file cannot become a document: a sync skips it, a single write answers with it (413/415/422).
SKIPPABLE = (UnsupportedContent, EmptyContent, PayloadTooLarge)
_OWNER = ("repository_id", "user_id", "agent_id", "app_id")
_POSITIONS = ("char_start", "char_end", "start_line", "end_line", "page", "token_count")
CLEARED: dict[str, Any] = {"tags": [], "metadata": {}, "source_url": None}  # what a PATCH's null sets
# Told, after each batch of vectors, how many of the chunks to embed are done, of how many.
Progress = Callable[[int, int], Awaitable[None]]


@dataclass(frozen=True)
class IngestJob:
    """One document to write. ``document_id`` rewrites that document; ``repository_id`` (with ``path``)
    adds or replaces the file at that path; neither makes a new document owned as ``owner`` says, unless
    that owner already has identical content. ``data`` None keeps the content (title, tags, metadata)."""

    data: bytes | None
    path: str | None = None
    declared_type: str | None = None
    document_id: uuid.UUID | None = None
    repository_id: uuid.UUID | None = None
    owner: DocumentFields | None = None
    title: str | None = None
    changes: dict[str, Any] = field(default_factory=dict)  # tags, metadata, source_url to set
    text_only: bool = False  # the bytes came as JSON text: binary formats must be uploaded


@dataclass(frozen=True)
class _Piece:
    """A chunk as it will be stored."""

    ordinal: int
    text: str
    heading_path: tuple[str, ...]
    positions: dict[str, Any]
    embed_text: str
    hash: bytes


def _piece(
    ordinal: int,
    text: str,
    heading_path: tuple[str, ...],
    positions: dict[str, Any],
    title: str | None,
    path: str | None,
) -> _Piece:
    embed_text = chunk_embedding_text(title, path, heading_path, text)
    return _Piece(ordinal, text, heading_path, positions, embed_text, hashlib.sha256(embed_text.encode()).digest())


@dataclass
class _Plan:
    job: IngestJob
    current: dict[str, Any] | None  # the document as read (None: a new one)
    title: str | None
    content: dict[str, Any] | None = None  # document columns from a new parse (None: content kept)
    pieces: list[_Piece] | None = None  # None: the chunks stay as they are
    pairs: list[tuple[_Piece, dict[str, Any] | None, bool]] = field(default_factory=list)  # piece, old row, embed?
    removed: list[uuid.UUID] = field(default_factory=list)
    vectors: dict[bytes, list[float]] = field(default_factory=dict)

    def needed(self) -> dict[bytes, str]:
        return {p.hash: p.embed_text for p, _, embed in self.pairs if embed and p.hash not in self.vectors}

    def noop(self) -> bool:
        cur = self.current
        if cur is None:
            return False
        if self.job.document_id is None and self.job.repository_id is None:
            return True  # identical content of the same owner: stored once, left as it is
        same = all(cur[k] == v for k, v in self.job.changes.items())
        return same and self.content is None and self.pieces is None and self.title == cur["title"]


class _Stale(Exception):
    """The document changed between reading and writing: plan it again."""


def doc_columns(*, content: bool) -> list[Any]:
    return [c for c in doc.c if content or c.name != "content"]


def public(row: dict[str, Any]) -> Document:
    return Document.model_validate({**row, "content_sha256": bytes(row["content_hash"]).hex()})


def _parse_and_chunk(
    data: bytes, ctype: ContentType, title: str | None, fallback: str | None, path: str | None
) -> tuple[Any, ...]:
    """CPU work, run in a thread: the text, the title (given, else the parse's, else ``fallback``), the pieces.
    A file that makes a parser or the splitter fail in a way nobody foresaw is refused as unreadable (and
    logged), so it is skipped in a sync instead of failing every file sent with it."""
    try:
        return _parse_and_chunk_now(data, ctype, title, fallback, path)
    except EngramError:
        raise
    except Exception as exc:
        _log.exception("could not parse %s", path)
        raise UnsupportedContent(f"{path or 'the document'} could not be read ({type(exc).__name__})") from exc


def _parse_and_chunk_now(
    data: bytes, ctype: ContentType, title: str | None, fallback: str | None, path: str | None
) -> tuple[Any, ...]:
    parsed = parse(data, ctype, path)
    if "\x00" in parsed.text:
        raise UnsupportedContent(f"{path or 'the document'} holds NUL characters: it looks like binary data")
    # A PDF's text can carry lone surrogates (a font's broken map): not text PostgreSQL can store.
    parsed = replace(parsed, text=_storable(parsed.text), title=_storable(parsed.title) if parsed.title else None)
    title = title or parsed.title or fallback
    pieces = [
        _piece(c.ordinal, c.text, c.heading_path, {k: getattr(c, k) for k in _POSITIONS}, title, path)
        for c in chunk_document(parsed)
    ]
    return parsed, title, pieces


_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text).replace("\x00", "")


def _pair(plan: _Plan, old: list[dict[str, Any]], model: str) -> None:
    """Pair each new piece with an old chunk: the same embedding text first (its vector is kept when this
    model made it), then the same text (the id is kept, the vector redone); the rest are new."""
    assert plan.pieces is not None
    free = {r["id"]: r for r in old}
    by_hash: dict[bytes, list[dict[str, Any]]] = {}
    by_text: dict[str, list[dict[str, Any]]] = {}
    for r in old:
        by_hash.setdefault(bytes(r["content_hash"]), []).append(r)
        by_text.setdefault(r["content"], []).append(r)

    def take(candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
        while candidates:
            r = candidates.pop(0)
            if free.pop(r["id"], None) is not None:
                return r
        return None

    for piece in plan.pieces:
        same = take(by_hash.get(piece.hash, []))
        if same is not None:
            plan.pairs.append((piece, same, same["embedding_model"] != model))
        else:
            plan.pairs.append((piece, take(by_text.get(piece.text, [])), True))
    plan.removed = list(free)


async def _old_chunks(conn: AsyncConnection, org_id: uuid.UUID, document_id: uuid.UUID) -> list[dict[str, Any]]:
    cols = [c for c in chk.c if c.name not in ("embedding", "search_tsv", "language")]
    query = select(*cols).where(chk.c.org_id == org_id, chk.c.document_id == document_id).order_by(chk.c.ordinal)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def _locate(
    conn: AsyncConnection, caller: Caller, job: IngestJob, raw_hash: bytes | None
) -> dict[str, Any] | None:
    """The document a job rewrites: by id, at its repository path, or (for a new document) the owner's
    document with the same bytes; None if there is none."""
    cols = doc_columns(content=False)
    if job.document_id is not None:
        query = select(*cols).where(*visibility.documents(caller, write=True), doc.c.id == job.document_id)
        row = (await conn.execute(query)).mappings().first()
        if row is None:
            raise NotFound(f"document {job.document_id} not found")
        return dict(row)
    scope = await document_scope(conn, caller, job.repository_id, job.owner, create=False)
    if scope is None:  # a user named by an external id Engram has not seen: nothing of theirs yet
        return None
    query = select(*cols).where(doc.c.org_id == caller.org_id)
    if job.repository_id is not None:
        query = query.where(doc.c.repository_id == job.repository_id, doc.c.path == job.path)
    else:
        zero = uuid.UUID(int=0)
        query = query.where(doc.c.repository_id.is_(None), doc.c.content_hash == raw_hash)
        for name in ("user_id", "agent_id", "app_id"):  # as ux_document_content compares them
            query = query.where(func.coalesce(doc.c[name], zero) == (scope[name] or zero))
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


def _content_type(job: IngestJob, current: dict[str, Any] | None, path: str | None) -> ContentType | None:
    """The kind of the job's bytes; new text for a document keeps its kind unless told otherwise."""
    if job.data is None:
        return None
    declared = job.declared_type
    if declared is None and current is not None and current["content_type"] != "application/pdf":
        declared = current["content_type"]
    ctype = detect_content_type(path, declared, job.data)
    if job.text_only and ctype == "application/pdf":
        raise UnsupportedContent("PDF is binary: upload the file rather than sending it as JSON text")
    return ctype


def _check_size(job: IngestJob) -> None:
    if job.data is not None and len(job.data) > limits.MAX_DOCUMENT_BYTES:
        raise PayloadTooLarge(
            f"{job.path or 'the document'} is {len(job.data):,} bytes; the limit is {limits.MAX_DOCUMENT_BYTES:,}"
        )


async def check(rt: Runtime, caller: Caller, job: IngestJob) -> uuid.UUID | None:
    """Refuse now what can be refused without parsing (size, type, rights, the document or repository it
    names), for a job that will run later; returns the user the document will belong to, when known."""
    caller.require("write")
    _check_size(job)
    async with rt.db.tenant(caller.org_id) as conn:
        current = await _locate(conn, caller, job, None)
        if current is None:
            scope = await document_scope(conn, caller, job.repository_id, job.owner, create=False)
            user_id: uuid.UUID | None = scope["user_id"] if scope else None
        else:
            user_id = current["user_id"]
    _content_type(job, current, current["path"] if current is not None else job.path)
    return user_id


async def _prepare(rt: Runtime, caller: Caller, job: IngestJob) -> _Plan:
    """Read, parse, chunk and pair one job (steps 1 and 2); nothing is written."""
    _check_size(job)
    raw_hash = hashlib.sha256(job.data).digest() if job.data is not None else None
    async with rt.db.tenant(caller.org_id) as conn:
        current = await _locate(conn, caller, job, raw_hash)
        plan = _Plan(job, current, current["title"] if current is not None else job.title)
        if current is not None and job.document_id is None and job.repository_id is None:
            return plan  # identical content of this owner is already stored
        path = current["path"] if current is not None else job.path
        ctype = _content_type(job, current, path)
        same = current is not None and (
            job.data is None or (raw_hash == bytes(current["content_hash"]) and ctype == current["content_type"])
        )
        retitled = current is not None and job.title not in (None, current["title"])
        old = await _old_chunks(conn, caller.org_id, current["id"]) if current and (retitled or not same) else []
    if not same:
        assert job.data is not None and ctype is not None
        fallback = current["title"] if current is not None else None
        parsed, plan.title, plan.pieces = await asyncio.to_thread(
            _parse_and_chunk, job.data, ctype, job.title, fallback, path
        )
        plan.content = {
            "content": parsed.text,
            "content_hash": raw_hash,
            "content_type": ctype,
            "code_language": parsed.code_language,
            "size_bytes": len(job.data),
            "page_count": len(parsed.page_starts) or None,
        }
    elif retitled:  # the chunks were embedded with the title: under a new one, again (with the same ids)
        plan.title = job.title
        plan.pieces = [
            _piece(r["ordinal"], r["content"], tuple(r["heading_path"]), {k: r[k] for k in _POSITIONS}, job.title, path)
            for r in old
        ]
    if plan.pieces is not None:
        _pair(plan, old, rt.embedder.model)
    return plan


async def _embed(rt: Runtime, plans: list[_Plan], progress: Progress | None = None) -> None:
    """Every vector these plans lack, in batches (step 3). A cancellation (a stopping worker) takes effect
    between batches, so it waits for one batch at most."""
    wanted: dict[bytes, str] = {}
    for plan in plans:
        wanted.update(plan.needed())
    keys = list(wanted)
    vectors: dict[bytes, list[float]] = {}
    for start in range(0, len(keys), EMBED_BATCH):
        batch = keys[start : start + EMBED_BATCH]
        made = await rt.embedder.embed_batch([wanted[k] for k in batch], kind="passage")
        vectors.update(zip(batch, made, strict=True))
        if progress is not None:
            await progress(len(vectors), len(keys))
    for plan in plans:
        plan.vectors.update({k: vectors[k] for k in plan.needed()})


async def _write_chunks(
    conn: AsyncConnection, rt: Runtime, org_id: uuid.UUID, row: dict[str, Any], plan: _Plan
) -> ChunkCounts:
    """Insert the new chunks, move and re-embed the kept ones, delete the rest (ids of kept chunks stay)."""
    model = rt.embedder.model
    inserts: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    embedded: list[dict[str, Any]] = []
    for piece, old, embed in plan.pairs:
        values: dict[str, Any] = {
            "ordinal": piece.ordinal,
            "content": piece.text,
            "content_hash": piece.hash,
            "heading_path": list(piece.heading_path),
            "heading": " ".join(piece.heading_path),
            **piece.positions,
        }
        if old is None:
            inserts.append(
                {
                    **values,
                    "org_id": org_id,
                    "id": ids.uuid7(),
                    "document_id": row["id"],
                    **{k: row[k] for k in _OWNER},
                    "embedding": plan.vectors[piece.hash],
                    "embedding_model": model,
                    "language": rt.settings.search_language,
                }
            )
        elif embed:
            embedded.append(
                {**{f"v_{k}": v for k, v in values.items()}, "k_id": old["id"], "v_embedding": plan.vectors[piece.hash]}
            )
        elif (
            any(old[k] != v for k, v in values.items() if k != "content_hash")
            or bytes(old["content_hash"]) != piece.hash
        ):
            moved.append({**{f"v_{k}": v for k, v in values.items()}, "k_id": old["id"]})
    if plan.removed:
        await conn.execute(delete(chk).where(chk.c.org_id == org_id, chk.c.id.in_(plan.removed)))
    cols = ["ordinal", "content", "content_hash", "heading_path", "heading", *_POSITIONS]
    where = (chk.c.org_id == org_id, chk.c.id == bindparam("k_id"))
    if moved:
        await conn.execute(update(chk).where(*where).values({c: bindparam(f"v_{c}") for c in cols}), moved)
    if embedded:
        vals: dict[str, Any] = {c: bindparam(f"v_{c}") for c in [*cols, "embedding"]}
        await conn.execute(update(chk).where(*where).values({**vals, "embedding_model": model}), embedded)
    if inserts:
        await conn.execute(insert(chk), inserts)
    kept = len(plan.pairs) - len(inserts)
    return ChunkCounts(added=len(inserts), kept=kept, removed=len(plan.removed), embedded=len(inserts) + len(embedded))


async def _insert(conn: AsyncConnection, caller: Caller, plan: _Plan) -> dict[str, Any]:
    """The new document's row (its chunks follow); _Stale if one was written meanwhile at that path, or
    with that content, which the next plan then finds."""
    job = plan.job
    owner = await document_scope(conn, caller, job.repository_id, job.owner, create=True)
    assert owner is not None and plan.content is not None and plan.pieces is not None
    stmt = pg_insert(doc).values(
        org_id=caller.org_id,
        id=ids.uuid7(),
        **owner,
        path=job.path,
        title=plan.title,
        tags=job.changes.get("tags", []),
        metadata=job.changes.get("metadata", {}),
        source_url=job.changes.get("source_url"),
        chunk_count=len(plan.pieces),
        **plan.content,
    )
    row = (await conn.execute(stmt.on_conflict_do_nothing().returning(*doc_columns(content=True)))).mappings().first()
    if row is None:
        raise _Stale
    if job.repository_id is not None:
        r = t.repository
        stmt_count = update(r).where(r.c.org_id == caller.org_id, r.c.id == job.repository_id)
        await conn.execute(stmt_count.values(document_count=r.c.document_count + 1))
    return dict(row)


async def _commit(rt: Runtime, caller: Caller, plan: _Plan) -> DocumentResult:
    """Step 4: one transaction per document, after checking the document is as it was read."""
    cur, job = plan.current, plan.job
    if cur is not None and plan.noop():
        return DocumentResult(document=public(cur), action="unchanged", chunks=ChunkCounts(kept=cur["chunk_count"]))
    async with rt.db.tenant(caller.org_id) as conn:
        if cur is None:
            row = await _insert(conn, caller, plan)
        else:
            query = select(doc.c.content_hash, doc.c.updated_at).where(
                *visibility.documents(caller, write=True), doc.c.id == cur["id"]
            )
            now = (await conn.execute(query.with_for_update())).first()
            if now is None or (bytes(now.content_hash), now.updated_at) != (
                bytes(cur["content_hash"]),
                cur["updated_at"],
            ):
                raise _Stale
            values: dict[str, Any] = {
                **job.changes,
                **(plan.content or {}),
                "title": plan.title,
                "updated_at": func.now(),
            }
            if plan.pieces is not None:
                values["chunk_count"] = len(plan.pieces)
            stmt = update(doc).where(doc.c.org_id == caller.org_id, doc.c.id == cur["id"]).values(values)
            try:
                row = dict((await conn.execute(stmt.returning(*doc_columns(content=True)))).mappings().one())
            except IntegrityError as exc:
                if "ux_document_content" not in str(exc.orig):
                    raise
                raise Conflict(
                    "another document of the same owner already has exactly this content; "
                    "delete one of the two, or change this one differently"
                ) from exc
        counts = ChunkCounts(kept=row["chunk_count"])
        if plan.pieces is not None:
            counts = await _write_chunks(conn, rt, caller.org_id, row, plan)
        action: Action = "created" if cur is None else "updated"
        repository = str(row["repository_id"]) if row["repository_id"] else None
        details = {"path": row["path"], "repository_id": repository, "chunks": counts.model_dump()}
        await audit.record(conn, caller, f"document.{action}", "document", row["id"], details)
        data = {"action": action, "document": public({**row, "content": None}), "chunks": counts}
        await events.emit(conn, org_id=caller.org_id, event_type="document.synced", data=data)
    return DocumentResult(document=public(row), action=action, chunks=counts)


async def ingest_many(
    rt: Runtime, caller: Caller, jobs: list[IngestJob], *, progress: Progress | None = None
) -> list[DocumentResult | EngramError]:
    """Write several documents; each is its own transaction, and their vectors are computed together.

    A job whose bytes cannot become a document (:data:`SKIPPABLE`: unsupported, binary, empty, too large)
    gets that error in its place and the others go on; any other error (an unknown repository, a key bound
    elsewhere) stops the call. ``progress`` hears of the embedding as it goes."""
    caller.require("write")
    out: list[DocumentResult | EngramError | None] = [None] * len(jobs)
    plans: dict[int, _Plan] = {}
    for i, job in enumerate(jobs):
        try:
            plans[i] = await _prepare(rt, caller, job)
        except SKIPPABLE as exc:
            out[i] = exc
    await _embed(rt, list(plans.values()), progress)
    for i, plan in plans.items():
        for attempt in range(ATTEMPTS):
            try:
                out[i] = await _commit(rt, caller, plan)
                break
            except (ValidationFailed, Conflict) as exc:  # this file's values, or a clash: the others go on
                out[i] = exc
                break
            except _Stale:
                if attempt == ATTEMPTS - 1:
                    raise Conflict(
                        f"{plan.job.path or 'the document'} kept changing while it was written; try again"
                    ) from None
                plan = await _prepare(rt, caller, plan.job)
                await _embed(rt, [plan])
    return [r for r in out if r is not None]


async def ingest(rt: Runtime, caller: Caller, job: IngestJob, *, progress: Progress | None = None) -> DocumentResult:
    (result,) = await ingest_many(rt, caller, [job], progress=progress)
    if isinstance(result, EngramError):
        raise result
    return result

"""Offloaded contexts: offload (create), read, restore, list, delete.

An offload resolves who the context belongs to and looks for the same content (SHA-256) already stored
in that scope, in one short transaction; compresses, summarizes and embeds outside any transaction (a
16 MiB context takes a while, and holds no database connection meanwhile); then stores it in a second.
Two offloads of the same content into the same scope at once store it once: the unique index decides,
and the loser gets the stored one back (``unchanged``), so a retried offload is idempotent by content.

An expired context (``expires_at`` passed) is hidden from every read at once and removed by the
retention sweep after ``ENGRAM_EXPIRED_GRACE_DAYS``; offloading its content again stores it afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, cast, delete, func, select
from sqlalchemy.dialects.postgresql import REGCONFIG, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids, limits
from engramdb.errors import PayloadTooLarge, ValidationFailed
from engramdb.schemas.common import Page
from engramdb.schemas.contexts import Context, ContextFields, ContextFilters, ContextResult
from engramdb.services.contexts import compression, summaries
from engramdb.services.conversation.sessions import fetch_visible
from engramdb.services.core import audit, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy.directory import find_external_user, resolve_scope
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching, unexpired
from engramdb.storage.repo import one_or_404, page_by_id, raise_conflict

oc = t.offloaded_context
_HIDDEN = ("data", "embedding", "search_tsv", "language", "embedding_model")
_SCOPE = ("team_id", "user_id", "agent_id", "app_id", "session_id", "task_id")
_GONE = {  # what it was to belong to went away between the two transactions
    f"fk_offloaded_context_{name}": f"the {name} this context was to belong to was deleted meanwhile"
    for name in ("team", "user", "agent", "app", "session", "task")
}


def columns() -> list[ColumnElement[Any]]:
    """Every column a reader gets (not the blob, the vector or the index)."""
    return [c for c in oc.c if c.name not in _HIDDEN]


def public(row: dict[str, Any]) -> Context:
    return Context.model_validate({**row, "content_sha256": bytes(row["content_sha256"]).hex()})


def too_large(size: int) -> PayloadTooLarge:
    limit = limits.MAX_CONTEXT_BYTES
    return PayloadTooLarge(
        f"the context is over the {limit:,}-byte limit (MAX_CONTEXT_BYTES, 16 MiB): {size:,} bytes or more; "
        "split it, or offload the parts that matter"
    )


def _content_type(fields: ContextFields, declared: str | None, filename: str | None, text: bool) -> str:
    guessed = mimetypes.guess_type(filename)[0] if filename else None
    given = fields.content_type or declared or guessed
    if given:
        return given
    return "text/plain; charset=utf-8" if text else "application/octet-stream"


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _expiry(fields: ContextFields, now: datetime) -> datetime | None:
    if fields.ttl_s is not None:
        return now + timedelta(seconds=fields.ttl_s)
    if fields.expires_at is not None and fields.expires_at <= now:
        raise ValidationFailed("expires_at is in the past: a context must expire later than now")
    return fields.expires_at


async def _scope(conn: AsyncConnection, caller: Caller, fields: ContextFields) -> dict[str, uuid.UUID | None]:
    """Who the context belongs to: the named user, agent, team and app (checked as for a session), and the
    session and task, whose owners fill in what the request leaves out (and may not contradict)."""
    scope: dict[str, uuid.UUID | None] = dict(await resolve_scope(conn, caller, fields))
    scope["session_id"] = scope["task_id"] = None
    inherited: list[tuple[str, dict[str, Any]]] = []
    if fields.session_id is not None:
        session = await fetch_visible(conn, caller, fields.session_id, write=True)
        scope["session_id"] = session["id"]
        inherited.append(("session", session))
    if fields.task_id is not None:
        k = t.task
        query = select(k.c.id, k.c.user_id).where(*visibility.tasks(caller), k.c.id == fields.task_id)
        task = await one_or_404(conn, query, "task", fields.task_id)
        scope["task_id"] = task["id"]
        inherited.append(("task", task))
    for owner, row in inherited:
        for name in ("user_id", "agent_id", "team_id", "app_id"):
            value = row.get(name)
            if value is None:
                continue
            if scope[name] is None:
                scope[name] = value
            elif scope[name] != value:
                label = name.removesuffix("_id")
                raise ValidationFailed(f"the {owner} belongs to another {label} than the one this context names")
    return scope


def _same_content(org_id: uuid.UUID, scope: dict[str, uuid.UUID | None], digest: bytes) -> list[ColumnElement[bool]]:
    conds = [oc.c.org_id == org_id, oc.c.content_sha256 == digest]
    conds += [oc.c[name].is_(None) if value is None else oc.c[name] == value for name, value in scope.items()]
    return conds


async def _stored(
    conn: AsyncConnection, org_id: uuid.UUID, scope: dict[str, uuid.UUID | None], digest: bytes
) -> dict[str, Any] | None:
    """The same content already stored in this scope and not expired; an expired copy is deleted, so the
    offload stores it afresh."""
    same = _same_content(org_id, scope, digest)
    row = (await conn.execute(select(*columns()).where(*same).with_for_update())).mappings().first()
    if row is None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC):
        await conn.execute(delete(oc).where(oc.c.org_id == org_id, oc.c.id == row["id"]))
        return None
    return dict(row)


@dataclass(frozen=True)
class _Prepared:
    frame: bytes
    content_type: str
    text: str | None
    summary: summaries.Representative
    embedding: list[float]


async def _prepare(
    rt: Runtime, fields: ContextFields, data: bytes, declared: str | None, name: str | None
) -> _Prepared:
    """Compress, summarize and embed (no transaction open)."""
    frame_task = asyncio.ensure_future(asyncio.to_thread(compression.compress, data))
    try:
        guess = _content_type(fields, declared, name, text=False)
        text = summaries.text_of(data, guess)
        content_type = _content_type(fields, declared, name, text=text is not None)
        summary = await summaries.represent(
            rt, text, title=fields.title, filename=name, content_type=content_type, size=len(data)
        )
        (vector,) = await rt.embedder.embed_batch([summary.text], kind="passage")
        frame = await frame_task
    finally:
        if not frame_task.done():
            frame_task.cancel()
    return _Prepared(frame, content_type, text, summary, vector)


async def create(
    rt: Runtime,
    caller: Caller,
    fields: ContextFields,
    data: bytes,
    *,
    content_type: str | None = None,
    filename: str | None = None,
) -> ContextResult:
    """Offload ``data`` (``content_type`` and ``filename``: an upload's own, used when ``fields`` give
    none). The same content already stored in the same scope comes back ``unchanged``."""
    caller.require("write")
    if len(data) > limits.MAX_CONTEXT_BYTES:
        raise too_large(len(data))
    if not data:
        raise ValidationFailed("the context is empty: there is nothing to offload")
    expires_at = _expiry(fields, datetime.now(UTC))
    digest = await asyncio.to_thread(_sha256, data)  # 16 MiB takes tens of milliseconds
    name = fields.filename or filename
    async with rt.db.tenant(caller.org_id) as conn:
        scope = await _scope(conn, caller, fields)
        found = await _stored(conn, caller.org_id, scope, digest)
    if found is not None:
        return ContextResult(context=public(found), action="unchanged")
    ready = await _prepare(rt, fields, data, content_type, name)
    values = {
        "org_id": caller.org_id,
        "id": ids.uuid7(),
        **scope,
        "title": fields.title,
        "filename": name,
        "content_type": ready.content_type,
        "tags": fields.tags,
        "metadata": fields.metadata,
        "data": ready.frame,
        "compression": compression.CODEC,
        "compression_level": compression.LEVEL,
        "original_bytes": len(data),
        "stored_bytes": len(ready.frame),
        "compression_ratio": len(data) / len(ready.frame),
        "content_sha256": digest,
        "is_text": ready.text is not None,
        "summary": ready.summary.text,
        "summary_source": ready.summary.source,
        "embedding": ready.embedding,
        "embedding_model": rt.embedder.model,
        "language": rt.settings.search_language,
        "search_tsv": func.to_tsvector(
            cast(rt.settings.search_language, REGCONFIG), summaries.indexed_text(ready.summary.text, ready.text)
        ),
        "expires_at": expires_at,
    }
    async with rt.db.tenant(caller.org_id) as conn:
        await _stored(conn, caller.org_id, scope, digest)  # an expired copy stored meanwhile goes
        stmt = insert(oc).values(values).on_conflict_do_nothing().returning(*columns())
        try:
            row = (await conn.execute(stmt)).mappings().first()
        except IntegrityError as exc:
            raise_conflict(exc, _GONE)
        if row is None:  # the same content was offloaded into this scope meanwhile
            found = await _stored(conn, caller.org_id, scope, digest)
            if found is not None:
                return ContextResult(context=public(found), action="unchanged")
            raise ValidationFailed("the same content was offloaded and expired meanwhile; offload it again")
        details = {
            "original_bytes": len(data),
            "stored_bytes": len(ready.frame),
            "content_type": ready.content_type,
            "summary_source": ready.summary.source,
        }
        await audit.record(conn, caller, "context.created", "offloaded_context", row["id"], details)
    return ContextResult(context=public(dict(row)), action="created")


def _visible(caller: Caller, context_id: uuid.UUID) -> list[ColumnElement[bool]]:
    """The context if the caller sees it and it has not expired (an expired one is gone to readers)."""
    return [*visibility.contexts(caller), oc.c.id == context_id, unexpired(oc)]


async def get(db: Database, caller: Caller, context_id: uuid.UUID) -> Context:
    caller.require("read")
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, select(*columns()).where(*_visible(caller, context_id)), "context", context_id)
    return public(row)


@dataclass(frozen=True)
class Restore:
    """A context's description and its content, restored piece by piece as it is iterated (blocking:
    iterate it off the event loop). The pieces add up to exactly ``context.original_bytes`` bytes."""

    context: Context
    frame: bytes

    def __iter__(self) -> Iterator[bytes]:
        return compression.restore(self.frame)


async def restore(db: Database, caller: Caller, context_id: uuid.UUID) -> Restore:
    caller.require("read")
    query = select(*columns(), oc.c.data).where(*_visible(caller, context_id))
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, query, "context", context_id)
    return Restore(public(row), bytes(row["data"]))


async def list_contexts(db: Database, caller: Caller, filters: ContextFilters) -> Page[Context]:
    """Newest first, without their content."""
    caller.require("read")
    conds = visibility.contexts(caller)
    conds += matching(oc, filters, equal=("user_id", "team_id", "agent_id", "app_id", "session_id", "task_id"))
    if filters.content_type is not None:
        conds.append(oc.c.content_type == filters.content_type)
    if not filters.include_expired:
        conds.append(unexpired(oc))
    async with db.tenant(caller.org_id) as conn:
        if filters.external_user_id is not None:
            uid = await find_external_user(conn, caller, filters.external_user_id)
            if uid is None:
                return Page[Context](data=[], next_cursor=None)
            conds.append(oc.c.user_id == uid)
        query = select(*columns()).where(*conds)
        rows, next_cursor = await page_by_id(conn, query, oc, cursor=filters.cursor, limit=filters.limit)
    return Page[Context](data=[public(r) for r in rows], next_cursor=next_cursor)


async def delete_context(db: Database, caller: Caller, context_id: uuid.UUID) -> None:
    """Delete a context (an expired one too, while the sweep has not yet)."""
    caller.require("write")
    query = select(oc.c.id).where(*visibility.contexts(caller), oc.c.id == context_id).with_for_update()
    async with db.tenant(caller.org_id) as conn:
        await one_or_404(conn, query, "context", context_id)
        await conn.execute(delete(oc).where(oc.c.org_id == caller.org_id, oc.c.id == context_id))
        await audit.record(conn, caller, "context.deleted", "offloaded_context", context_id)

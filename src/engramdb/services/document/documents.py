"""Documents: texts kept whole, cut into chunks that are embedded and searched (create, read, list,
update, delete, and their chunks). Every write of content goes through ``services.ingest``."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update

from engramdb import limits
from engramdb.errors import (
    InvalidRequest,
    ValidationFailed,
)
from engramdb.providers.documents import (
    Chunk,
    citation,
)
from engramdb.schemas.common import Page
from engramdb.schemas.documents import (
    Document,
    DocumentChunk,
    DocumentChunkFilters,
    DocumentCreate,
    DocumentFields,
    DocumentFilters,
    DocumentQueued,
    DocumentResult,
    DocumentUpdate,
)
from engramdb.services.core import audit, events, visibility
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.document import background as background_ingest
from engramdb.services.document.ingest import CLEARED, IngestJob, doc_columns, ingest, public
from engramdb.services.document.repositories import fetch as fetch_repository
from engramdb.services.tenancy.directory import find_external_user
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching
from engramdb.storage.pagination import BAD_CURSOR, decode_cursor, encode_cursor
from engramdb.storage.repo import one_or_404, page_by_id

doc = t.document
chk = t.chunk


def _upload_name(filename: str | None) -> str | None:
    """An upload's file name, held to the same rules as a ``path`` field."""
    if filename is None:
        return None
    name = filename.replace("\x00", "").strip()
    if len(name) > limits.MAX_PATH_CHARS:
        raise ValidationFailed(f"the file name is over {limits.MAX_PATH_CHARS:,} characters; send a shorter `path`")
    return name or None


async def create(
    rt: Runtime,
    caller: Caller,
    fields: DocumentFields,
    data: bytes,
    *,
    filename: str | None = None,
    part_type: str | None = None,
    text_only: bool = False,
    background: bool = False,
) -> DocumentResult | DocumentQueued:
    """A new document, or with ``repository_id`` the file at ``path`` added or replaced. Identical
    content of the same owner (outside repositories) is not stored twice: the stored document comes back,
    ``unchanged``, its title, tags and metadata as they were. ``filename`` and ``part_type`` (an upload's
    own name and media type) count when ``fields`` give no path or type. A large document (or any, with
    ``background``) is queued instead: see ``services.document.background``."""
    changes: dict[str, Any] = {k: getattr(fields, k) for k in CLEARED if k in fields.model_fields_set}
    if fields.repository_id is not None and not (fields.path or filename):
        raise ValidationFailed("a document in a repository needs a path")
    job = IngestJob(
        data=data,
        path=fields.path or _upload_name(filename),
        declared_type=fields.content_type or part_type,
        repository_id=fields.repository_id,
        owner=fields,
        title=fields.title,
        changes=changes,
        text_only=text_only,
    )
    if background_ingest.queued(rt, data, background):
        return await background_ingest.enqueue(rt, caller, job)
    return await ingest(rt, caller, job)


async def create_text(
    rt: Runtime, caller: Caller, body: DocumentCreate, *, background: bool = False
) -> DocumentResult | DocumentQueued:
    """:func:`create` from JSON: the content is text, so binary formats (PDF) are refused."""
    return await create(rt, caller, body, body.content.encode(), text_only=True, background=background)


async def get(db: Database, caller: Caller, document_id: uuid.UUID, *, include_content: bool = True) -> Document:
    caller.require("read")
    query = select(*doc_columns(content=include_content)).where(*visibility.documents(caller), doc.c.id == document_id)
    async with db.tenant(caller.org_id) as conn:
        return public(await one_or_404(conn, query, "document", document_id))


async def list_documents(db: Database, caller: Caller, filters: DocumentFilters) -> Page[Document]:
    """Newest first, without their content."""
    caller.require("read")
    conds = visibility.documents(caller)
    conds += matching(doc, filters, equal=("user_id", "agent_id", "app_id", "repository_id", "content_type"))
    if filters.path_prefix:
        conds.append(doc.c.path.startswith(filters.path_prefix, autoescape=True))
    async with db.tenant(caller.org_id) as conn:
        if filters.external_user_id is not None:
            uid = await find_external_user(conn, caller, filters.external_user_id)
            if uid is None:
                return Page[Document](data=[], next_cursor=None)
            conds.append(doc.c.user_id == uid)
        query = select(*doc_columns(content=False)).where(*conds)
        rows, next_cursor = await page_by_id(conn, query, doc, cursor=filters.cursor, limit=filters.limit)
    return Page[Document](data=[public(r) for r in rows], next_cursor=next_cursor)


async def update_document(
    rt: Runtime, caller: Caller, document_id: uuid.UUID, body: DocumentUpdate, *, background: bool = False
) -> Document | DocumentQueued:
    """Title, tags, metadata, source URL; new ``content`` is re-ingested, re-embedding only what changed
    (queued, when it is large or ``background`` says so)."""
    wire = body.model_dump(exclude_unset=True)
    changes = {k: wire[k] if wire[k] is not None else empty for k, empty in CLEARED.items() if k in wire}
    content = wire.get("content")
    job = IngestJob(
        data=content.encode() if content is not None else None,
        document_id=document_id,
        declared_type=body.content_type,
        title=wire.get("title"),
        changes=changes,
        text_only=True,
    )
    if background_ingest.queued(rt, job.data, background):
        return await background_ingest.enqueue(rt, caller, job)
    result = await ingest(rt, caller, job)
    return result.document if result.action != "unchanged" else await get(rt.db, caller, document_id)


async def delete_document(db: Database, caller: Caller, document_id: uuid.UUID) -> None:
    """Delete a document with its chunks (by cascade). The repository, if any, is locked first, in the
    order every repository write takes."""
    caller.require("write")
    query = select(doc.c.id, doc.c.repository_id, doc.c.path).where(
        *visibility.documents(caller, write=True), doc.c.id == document_id
    )
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, query, "document", document_id)
        if row["repository_id"] is not None:
            await fetch_repository(conn, caller, row["repository_id"], lock=True)
        await one_or_404(conn, query.with_for_update(), "document", document_id)
        await conn.execute(delete(doc).where(doc.c.org_id == caller.org_id, doc.c.id == document_id))
        await events.redact(conn, caller.org_id, "document", [document_id])  # its title, path, tags go too
        if row["repository_id"] is not None:
            r = t.repository
            stmt = update(r).where(r.c.org_id == caller.org_id, r.c.id == row["repository_id"])
            await conn.execute(stmt.values(document_count=r.c.document_count - 1))
        repository = str(row["repository_id"]) if row["repository_id"] else None
        # The log keeps that it was deleted, not what it was: its path and earlier rows' details go too.
        await audit.redact(conn, caller.org_id, "document", [document_id])
        details = {"repository_id": repository}
        await audit.record(conn, caller, "document.deleted", "document", document_id, details)


def cite(path: str | None, title: str | None, row: dict[str, Any]) -> str:
    """The citation of a stored chunk row (see ``providers.documents.citation``)."""
    chunk = Chunk(
        ordinal=row["ordinal"],
        text=row["content"],
        char_start=row["char_start"],
        char_end=row["char_end"],
        start_line=row["start_line"] or 1,
        end_line=row["end_line"] or row["start_line"] or 1,
        heading_path=tuple(row["heading_path"]),
        page=row["page"],
        token_count=row["token_count"] or 0,
    )
    return citation(path, title, chunk)


async def list_chunks(
    db: Database, caller: Caller, document_id: uuid.UUID, filters: DocumentChunkFilters
) -> Page[DocumentChunk]:
    """In document order (by ordinal), each with its citation."""
    caller.require("read")
    cursor, limit = filters.cursor, filters.limit
    cols = [c for c in chk.c if c.name not in ("embedding", "search_tsv", "language", "content_hash")]
    query = select(*cols).where(chk.c.org_id == caller.org_id, chk.c.document_id == document_id)
    if cursor is not None:
        (last,) = decode_cursor(cursor, size=1)
        if type(last) is not int:  # not a bool either
            raise InvalidRequest(BAD_CURSOR)
        query = query.where(chk.c.ordinal > last)
    async with db.tenant(caller.org_id) as conn:
        owner = select(doc.c.path, doc.c.title).where(*visibility.documents(caller), doc.c.id == document_id)
        found = await one_or_404(conn, owner, "document", document_id)
        rows = [dict(r) for r in (await conn.execute(query.order_by(chk.c.ordinal).limit(limit + 1))).mappings()]
    next_cursor = encode_cursor([rows[limit - 1]["ordinal"]]) if len(rows) > limit else None
    data = [
        DocumentChunk.model_validate({**r, "citation": cite(found["path"], found["title"], r)}) for r in rows[:limit]
    ]
    return Page[DocumentChunk](data=data, next_cursor=next_cursor)

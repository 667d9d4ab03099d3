"""Embedding backfill: rows stored without a vector of the configured model get one.

That covers messages written with ``defer_embedding``, rows embedded by a previous model after
``ENGRAM_EMBEDDER`` changed, and anything a crash left half-done: the state lives in the rows
(``embedding_model`` differs from the current model), so nothing is lost across restarts. Document chunks
are embedded as the ingest embeds them (``chunk_embedding_text``, with their document's title and path).
The server runs it in the background; ``engramdb reembed`` runs it in the foreground with a progress bar.
Batches are claimed with ``FOR UPDATE SKIP LOCKED``, so several processes can share the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, func, select, tuple_, update

from engramdb.providers.documents import chunk_embedding_text
from engramdb.services.conversation.vectors import PENDING, MessageText, MessageVectors, embed_messages
from engramdb.services.core.runtime import Runtime
from engramdb.storage import tables as t

_log = logging.getLogger(__name__)
TABLES = (t.message, t.memory, t.chunk, t.offloaded_context)


def _pending(table: Table, model: str, *, other_models: bool) -> ColumnElement[bool]:
    """Rows with no vector (indexed, cheap to find), and with ``other_models`` also rows embedded by
    another model (a full scan: only ``engramdb reembed`` asks for it)."""
    if other_models:
        return table.c.embedding_model.is_distinct_from(model)
    return table.c.embedding_model.is_(None)


async def count_pending(rt: Runtime, *, other_models: bool = True) -> int:
    total = 0
    async with rt.db.system() as conn:
        for table in TABLES:
            cond = _pending(table, rt.embedder.model, other_models=other_models)
            total += await conn.scalar(select(func.count()).select_from(table).where(cond)) or 0
    return total


FAILED_PREFIX = "failed:"  # embedding_model of a row the embedder refused: skipped by the server's loop


def _previous(row: Any) -> tuple[str | None, str] | None:
    return None if row["prev_content"] is None else (row["prev_name"], row["prev_content"])


def _text(row: Any) -> str:
    """What a memory or chunk is embedded as (a chunk's row carries its document's title and path)."""
    if "doc_path" in row:
        return chunk_embedding_text(row["doc_title"], row["doc_path"], tuple(row["heading_path"]), row["content"])
    return str(row["content"])


async def _embed(rt: Runtime, rows: list[Any], is_message: bool) -> list[MessageVectors | None]:
    """Each row's vectors; after a failed batch, one by one, so a single bad row cannot hold back
    everything queued after it (that row gets None). A message whose context the embedder refuses (the
    previous turn may be the bad one) is embedded without it."""

    async def embed(batch: list[Any], context: bool = True) -> list[MessageVectors]:
        if is_message:
            texts = [
                MessageText(r["name"], r["content"], r["occurred_at"], _previous(r) if context else None) for r in batch
            ]
            return await embed_messages(rt.embedder, texts, rt.settings.message_vectors)
        vectors = await rt.embedder.embed_batch([_text(r) for r in batch], kind="passage")
        return [MessageVectors(v, None) for v in vectors]

    try:
        return list(await embed(rows))
    except Exception:
        _log.warning("embedding a batch failed; embedding its rows one by one")
    out: list[MessageVectors | None] = []
    for row in rows:
        vectors: MessageVectors | None = None
        for context in (True, False) if is_message else (True,):
            try:
                (vectors,) = await embed([row], context)
                break
            except Exception:
                if not context or not is_message:
                    _log.exception("embedding one row failed; it is marked and skipped until `engramdb reembed`")
        out.append(vectors)
    return out


class _Keyset:
    """How far a run has claimed rows of one table, shared by its lanes: a run never walks back over rows
    it already did (in ``engramdb reembed``, a row the embedder refused stays pending and would otherwise be
    claimed again by another lane)."""

    def __init__(self) -> None:
        self.after: tuple[Any, Any] | None = None

    def claimed(self, last: tuple[Any, Any]) -> None:
        if self.after is None or last > self.after:
            self.after = last


async def _batch(rt: Runtime, table: Table, size: int, other_models: bool, keyset: _Keyset) -> int:
    model = rt.embedder.model
    is_message = table is t.message
    # An offloaded context is embedded as its representative text (its content is a compressed blob).
    text = table.c.summary if table is t.offloaded_context else table.c.content
    cols: list[ColumnElement[Any]] = [table.c.org_id, table.c.id, text.label("content")]
    if is_message:
        cols += [table.c.created_at, table.c.name, table.c.occurred_at]
        prev = table.alias("prev")  # the session's previous turn, for the message's context vector
        before = select(prev.c.name, prev.c.content).where(
            prev.c.org_id == table.c.org_id, prev.c.session_id == table.c.session_id, prev.c.seq == table.c.seq - 1
        )
        cols += [before.with_only_columns(prev.c.name).scalar_subquery().label("prev_name")]
        cols += [before.with_only_columns(prev.c.content).scalar_subquery().label("prev_content")]
    if table is t.chunk:  # embedded with its document's title and path, as the ingest does
        d = t.document
        of_doc = select(d.c.title, d.c.path).where(d.c.org_id == table.c.org_id, d.c.id == table.c.document_id)
        cols += [table.c.heading_path]
        cols += [of_doc.with_only_columns(d.c.title).scalar_subquery().label("doc_title")]
        cols += [of_doc.with_only_columns(d.c.path).scalar_subquery().label("doc_path")]
    async with rt.db.system() as conn:
        query = (
            select(*cols)
            .where(_pending(table, model, other_models=other_models))
            .order_by(table.c.org_id, table.c.id)
            .limit(size)
            .with_for_update(skip_locked=True)
        )
        if keyset.after is not None:
            query = query.where(tuple_(table.c.org_id, table.c.id) > tuple_(*keyset.after))
        rows = (await conn.execute(query)).mappings().all()
        if not rows:
            return 0
        keyset.claimed((rows[-1]["org_id"], rows[-1]["id"]))
        vectors = await _embed(rt, list(rows), is_message)
        key = [table.c.org_id == bindparam("k_org"), table.c.id == bindparam("k_id")]
        if is_message:
            key.append(table.c.created_at == bindparam("k_created"))
        values: dict[str, Any] = {"embedding": bindparam("v"), "embedding_model": bindparam("m")}
        if is_message:
            values["part_embeddings"] = bindparam("s")
            values["context_embedding"] = bindparam("c")
        if table is t.chunk:  # a chunk's hash names the text its vector was made from
            values["content_hash"] = bindparam("h")
        stmt = update(table).where(*key).values(values)
        params = [
            {
                "k_org": r["org_id"],
                "k_id": r["id"],
                "v": v.embedding if v else None,
                "m": model if v is not None else FAILED_PREFIX + model,
                **(
                    {
                        "k_created": r["created_at"],
                        "s": v.part_embeddings if v else None,
                        "c": v.context_embedding if v else None,
                    }
                    if is_message
                    else {}
                ),
                **({"h": hashlib.sha256(_text(r).encode()).digest()} if table is t.chunk else {}),
            }
            for r, v in zip(rows, vectors, strict=True)
        ]
        await conn.execute(stmt, params)
    return len(rows)


async def backfill(
    rt: Runtime,
    *,
    other_models: bool = False,
    batch_size: int = 128,
    on_progress: Callable[[int], None] | None = None,
    lanes: int = 2,
) -> int:
    """Embed everything pending, batch by batch; returns how many rows were embedded.

    ``lanes`` batches are in flight at once, each in its own transaction: while one lane's batch is being
    embedded, another reads its rows or writes its vectors, so the embedder does not wait on the database
    between batches. ``SKIP LOCKED`` keeps the lanes' rows apart."""
    done = 0

    async def lane(table: Table, keyset: _Keyset) -> None:
        nonlocal done
        while True:
            n = await _batch(rt, table, batch_size, other_models, keyset)
            if not n:
                return
            done += n
            if on_progress:
                on_progress(n)

    for table in TABLES:
        keyset = _Keyset()
        try:
            async with asyncio.TaskGroup() as group:  # a lane that fails cancels the others
                for _ in range(max(1, lanes)):
                    group.create_task(lane(table, keyset))
        except BaseExceptionGroup as failed:  # the first failure, as one lane alone would raise it
            raise failed.exceptions[0] from None
    return done


async def run(rt: Runtime, interval_s: float = 5.0, *, woken: bool = True) -> None:
    """The server's background loop: it looks every ``interval_s`` seconds, and with ``woken`` also at once
    when a process announces deferred rows (``vectors.PENDING``, sent when a batch written with
    ``defer_embedding`` has committed), so a bulk import is embedded as it arrives rather than seconds
    later. A one-shot command (the CLI's local client) passes ``woken=False``: it opens no ``LISTEN``
    connection for a process that lives a moment."""
    if not woken:
        await _loop(rt, interval_s, asyncio.Event())
        return
    async with rt.listener.subscribe(*PENDING) as wake:
        await _loop(rt, interval_s, wake)


async def _loop(rt: Runtime, interval_s: float, woken: asyncio.Event) -> None:
    while True:
        woken.clear()  # before looking: an announcement made while this pass runs wakes the next
        try:
            embedded = await backfill(rt)
            if embedded:
                _log.info("embedded %d pending rows", embedded)
        except asyncio.CancelledError:
            raise
        except Exception:  # keep serving; the rows stay pending and are retried
            _log.exception("embedding backfill failed; will retry")
        with contextlib.suppress(TimeoutError):  # cancellation (shutdown) ends the loop here
            await asyncio.wait_for(woken.wait(), timeout=interval_s)

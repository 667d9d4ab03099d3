"""Import: an export file (services/governance/export.py) read back into the caller's organization.

* **The organization comes from the key.** Every row is written with the caller's ``org_id``; the file's
  ``org_id`` is ignored. Ids are organization-scoped, so the same file can be imported into another
  organization (a copy) or into the one it came from (a restore).
* **Idempotent.** A row whose primary key is already in the organization is skipped, left as it is
  (``ON CONFLICT DO NOTHING`` on the primary key), so importing a file twice writes it once. A row with a
  new id that clashes with another row's unique name (a team, user ``external_id``, agent, app, category
  or repository name, a live entity's name, a document's path) is a ``409`` naming its line.
* **All or nothing.** One transaction; a line that is not JSON (``400``), not a record of a known kind,
  a value of the wrong type or out of range, text over the API's own limit for its field, or a row the
  schema refuses (``422``), or a line over ``MAX_IMPORT_LINE_BYTES`` (``413``) names its line number, and
  nothing is written. Records must come in dependency order, as the export writes them.
* **Complete files only.** The last record must be the export's end record, ``{"kind": "end",
  "records": N}``, with ``N`` the number of records before it: a file cut short (a broken download) or
  with records added or lost is ``422`` and nothing is written.
* **Vectors.** A row's vector is kept when the row's ``embedding_model`` is the server's and its length
  the server's; otherwise it is dropped: entities and facts are embedded during the import (their names
  and statements are short), messages, memories and chunks are left to the embedding backfill.

kept whole because reading, checking and writing a record are one streamed loop over one transaction,
with the line number every error must name (about 490 lines); its record kinds come from ``export.py``.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any, NoReturn

from pydantic import ValidationError
from sqlalchemy import ARRAY, BigInteger, Boolean, Column, DateTime, Float, Integer, LargeBinary, Text, select
from sqlalchemy.dialects.postgresql import JSONB, REGCONFIG, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import limits
from engramdb.errors import Conflict, EngramError, InvalidRequest, PayloadTooLarge, ValidationFailed
from engramdb.schemas.export import END_KIND, ExportEnd, ExportHeader, ImportedVectors, ImportResult
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.governance.export import KINDS, KINDS_BY_NAME, Kind, columns
from engramdb.storage import tables as t
from engramdb.storage.vector_type import Embedding

BATCH_ROWS = 200  # rows per INSERT
BATCH_BYTES = 4 * 1024 * 1024  # and at most this much of the file per INSERT
_REGCONFIG = re.compile(r"^[a-z_]{1,63}$")
# Nullable references to a user that may lie outside a one-user export (another speaker in the user's
# session, another user's agent): cleared when that user is in neither the file nor the organization.
_SOFT_USER_REFERENCES = {"message": "user_id", "agent": "user_id"}
# What an entity and a fact are embedded as (services/graph/entities.py, services/graph/facts.py).
_EMBEDDED_TEXT = {"entity": "name", "fact": "statement"}
# Text the API alone writes, held to the API's own limits (in characters), so an import cannot store what
# the API would refuse. Text the worker also writes is not listed: extraction stores memories, entity
# names and fact parts as long as the conversation said them, parsing a document's title and text as long
# as the file holds them; there the database's own limits apply (a value it cannot index is a 422).
_TEXT_LIMITS: dict[str, dict[str, int]] = {
    "team": {"name": limits.MAX_NAME_CHARS, "description": limits.MAX_DESCRIPTION_CHARS},
    "user": {
        "external_id": limits.MAX_EXTERNAL_ID_CHARS,
        "display_name": limits.MAX_NAME_CHARS,
        "email": limits.MAX_NAME_CHARS,
    },
    "agent": {"name": limits.MAX_NAME_CHARS, "description": limits.MAX_DESCRIPTION_CHARS},
    "app": {"name": limits.MAX_NAME_CHARS, "description": limits.MAX_DESCRIPTION_CHARS},
    "category": {"name": limits.MAX_TAG_CHARS, "description": limits.MAX_DESCRIPTION_CHARS},
    "predicate": {"description": limits.MAX_DESCRIPTION_CHARS},  # the name: the table's own check
    "session": {"title": limits.MAX_NAME_CHARS},
    "message": {
        "content": limits.MAX_MESSAGE_CHARS,
        "name": limits.MAX_NAME_CHARS,
        "channel": limits.MAX_NAME_CHARS,
    },
    "repository": {
        "name": limits.MAX_NAME_CHARS,
        "description": limits.MAX_DESCRIPTION_CHARS,
        "source": limits.MAX_URL_CHARS,
    },
    "document": {"path": limits.MAX_PATH_CHARS, "source_url": limits.MAX_URL_CHARS},
}
# The instants a timestamp may hold: what Python's datetime (and so every reader of the row) can
# represent in UTC. Postgres would store 1 BC, which no read could then return.
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)
_CUT_SHORT = "the file ends before its end record: the export was cut short"


class _LineError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def run(rt: Runtime, caller: Caller, chunks: AsyncIterable[bytes]) -> ImportResult:
    """Read the file from ``chunks`` (the request body as it arrives) and store it in one transaction."""
    caller.require("admin")
    async with rt.db.tenant(caller.org_id) as conn:
        job = _Import(rt, caller, conn)
        async for number, line in _lines(chunks):
            await job.feed(number, line)
        await job.finish()
        result = job.result()
        details = {
            "imported": result.imported,
            "skipped": result.skipped,
            "source_org_id": str(job.header.org_id) if job.header and job.header.org_id else None,
            "scope": job.header.scope.model_dump(mode="json") if job.header and job.header.scope else None,
        }
        await audit.record(conn, caller, "data.imported", "organization", caller.org_id, details)
    return result


async def _lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers; ``413`` once the body passes ``MAX_IMPORT_BYTES``, or
    a line passes ``MAX_IMPORT_LINE_BYTES`` (so an unterminated line is not held up to the whole limit)."""
    limit, line_limit = limits.MAX_IMPORT_BYTES, limits.MAX_IMPORT_LINE_BYTES
    size = 0
    number = 0
    pending = bytearray()  # the start of a line that goes on in the next chunk
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the import is over the {limit}-byte limit; split the export by user")
        *complete, rest = chunk.split(b"\n")  # only the new bytes are searched: linear in the body
        for part in complete:
            if len(pending) + len(part) > line_limit:
                _line_too_long(number + 1, line_limit)
            pending += part
            number += 1
            if pending.strip():
                yield number, bytes(pending)
            pending = bytearray()
        if len(pending) + len(rest) > line_limit:
            _line_too_long(number + 1, line_limit)
        pending += rest
    if pending.strip():
        yield number + 1, bytes(pending)


def _line_too_long(number: int, limit: int) -> NoReturn:
    _fail(number, f"the line is over the {limit}-byte limit for one record (MAX_IMPORT_LINE_BYTES)", PayloadTooLarge)


def _fail(
    number: int, message: str, error: type[EngramError] = ValidationFailed, cause: BaseException | None = None
) -> NoReturn:
    raise error(
        f"line {number}: {message}; nothing was imported",
        errors=[{"location": f"line {number}", "message": message, "type": error.slug}],
    ) from cause


class _Import:
    def __init__(self, rt: Runtime, caller: Caller, conn: AsyncConnection) -> None:
        self.rt = rt
        self.caller = caller
        self.conn = conn
        self.header: ExportHeader | None = None
        self.end: ExportEnd | None = None
        self.records = 0  # records read between the header and the end record
        self.broken: int | None = None  # a line that is not JSON, reported once it is known not to be the last
        self.lines = 0
        self.kind: Kind | None = None
        self.batch: list[tuple[int, dict[str, Any]]] = []
        self.batch_bytes = 0
        self.imported: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.kept = 0
        self.reembedded = 0
        self.cleared = 0
        self._columns = {k.name: {c.name: c for c in columns(k)} for k in KINDS}

    async def feed(self, number: int, line: bytes) -> None:
        self.lines = number
        if self.broken is not None:
            _fail(self.broken, "not valid JSON", InvalidRequest)
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            if self.header is None:
                _fail(number, "not valid JSON", InvalidRequest)
            self.broken = number  # the last line of a file cut short is a truncated record: see finish()
            return
        if self.header is None:
            self.header = _header(number, record)
            return
        if self.end is not None:
            _fail(number, "a record follows the end record")
        if isinstance(record, dict) and record.get("kind") == END_KIND:
            await self._end(number, record)
            return
        if not isinstance(record, dict) or set(record) != {"kind", "data"}:
            _fail(number, 'a record is an object with exactly "kind" and "data"')
        kind = KINDS_BY_NAME.get(record["kind"]) if isinstance(record["kind"], str) else None
        if kind is None:
            known = ", ".join([*KINDS_BY_NAME, END_KIND])
            _fail(number, f"unknown kind {str(record['kind'])[:100]!r}; known: {known}")
        if not isinstance(record["data"], dict):
            _fail(number, '"data" must be an object')
        try:
            row = self._decode(kind, record["data"])
        except _LineError as exc:
            _fail(number, exc.message)
        if self.batch and (kind is not self.kind or len(self.batch) >= BATCH_ROWS or self.batch_bytes > BATCH_BYTES):
            await self._flush()
        self.kind = kind
        self.batch.append((number, row))
        self.batch_bytes += len(line)
        self.records += 1

    async def _end(self, number: int, record: dict[str, Any]) -> None:
        try:
            end = ExportEnd.model_validate(record)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            _fail(number, f'end record {where}: {first.get("msg")} (it is {{"kind": "end", "records": N}})')
        if self.batch:  # the rows before it first, so a row the database refuses is named by its own line
            await self._flush()
        if end.records != self.records:
            _fail(
                number,
                f"the end record counts {end.records} records but the file holds {self.records}: "
                "records were lost or added since the export",
            )
        self.end = end

    async def finish(self) -> None:
        if self.header is None:
            raise ValidationFailed("the file is empty: an export starts with its header line")
        if self.broken is not None:
            _fail(self.broken, f"{_CUT_SHORT} (its last line is not complete JSON)")
        if self.end is None:
            _fail(self.lines, _CUT_SHORT)

    def result(self) -> ImportResult:
        return ImportResult(
            imported={k.plural: self.imported[k.plural] for k in KINDS},
            skipped={k.plural: self.skipped[k.plural] for k in KINDS},
            lines=self.lines,
            vectors=ImportedVectors(kept=self.kept, reembedded=self.reembedded),
            cleared_references=self.cleared,
        )

    def _decode(self, kind: Kind, data: dict[str, Any]) -> dict[str, Any]:
        cols = self._columns[kind.name]
        unknown = sorted(set(data) - set(cols))
        if unknown:
            raise _LineError(f"a {kind.name} has no field {unknown[0][:100]!r}")
        row: dict[str, Any] = {"org_id": self.caller.org_id}
        for name, value in data.items():  # a field left out takes the column's default
            try:
                row[name] = _decode(cols[name], value)
            except (ValueError, TypeError) as exc:
                raise _LineError(f"{kind.name}.{name}: {exc}") from None
        embedded = _EMBEDDED_TEXT.get(kind.name)  # embedded before the insert: required here, not at the INSERT
        for key in (*kind.keys, *kind.conflict, *([embedded] if embedded else [])):
            if row.get(key) is None:
                raise _LineError(f"{kind.name}.{key} is required")
        for name, most in _TEXT_LIMITS.get(kind.name, {}).items():
            value = row.get(name)
            if isinstance(value, str) and len(value) > most:
                raise _LineError(f"{kind.name}.{name} is {len(value):,} characters; the API takes at most {most:,}")
        return row

    async def _flush(self) -> None:
        assert self.kind is not None
        kind, batch = self.kind, self.batch
        self.batch, self.batch_bytes = [], 0
        rows = [row for _, row in batch]
        if "embedding" in kind.table.c:
            await self._vectors(kind, rows)
        if kind.name in _SOFT_USER_REFERENCES:
            await self._clear_absent_users(rows, _SOFT_USER_REFERENCES[kind.name])
        stored = 0
        try:
            async with self.conn.begin_nested():
                for group in _by_fields(rows):  # one INSERT … VALUES needs the same fields in every row
                    stored += len((await self.conn.execute(_insert(kind, group))).all())
        except DBAPIError as exc:
            if not _row_fault(exc):
                raise
            await self._pinpoint(kind, batch, exc)
        self.imported[kind.plural] += stored
        self.skipped[kind.plural] += len(rows) - stored

    async def _vectors(self, kind: Kind, rows: list[dict[str, Any]]) -> None:
        """Keep each row's vectors if the server's model made them, else drop them to be embedded again."""
        model, dims = self.rt.embedder.model, self.rt.embedder.dimensions
        missing: list[dict[str, Any]] = []
        for row in rows:
            vectors = [row.get("embedding"), row.get("context_embedding"), *(row.get("part_embeddings") or [])]
            if (
                row.get("embedding_model") == model
                and row.get("embedding") is not None
                and all(v is None or len(v) == dims for v in vectors)
            ):
                self.kept += 1
                continue
            for name in ("embedding", "part_embeddings", "context_embedding", "embedding_model"):
                if name in row:
                    row[name] = None
            self.reembedded += 1
            missing.append(row)
        field = _EMBEDDED_TEXT.get(kind.name)
        if field and missing:  # no backfill covers entities and facts: embed them now
            embedded = await self.rt.embedder.embed_batch([str(r.get(field)) for r in missing], kind="passage")
            for row, vector in zip(missing, embedded, strict=True):
                row["embedding"], row["embedding_model"] = vector, model

    async def _clear_absent_users(self, rows: list[dict[str, Any]], column: str) -> None:
        named = {row[column] for row in rows if row.get(column) is not None}
        if not named:
            return
        u = t.user_account
        query = select(u.c.id).where(u.c.org_id == self.caller.org_id, u.c.id.in_(named))
        present = set((await self.conn.execute(query)).scalars())
        for row in rows:
            if row.get(column) is not None and row[column] not in present:
                row[column] = None
                self.cleared += 1

    async def _pinpoint(self, kind: Kind, batch: list[tuple[int, dict[str, Any]]], first: DBAPIError) -> NoReturn:
        """Find the row the database refused by inserting the batch one row at a time (the transaction is
        rolled back afterwards in any case) and name its line."""
        for number, row in batch:
            try:
                await self.conn.execute(_insert(kind, [row]))
            except DBAPIError as exc:
                if not _row_fault(exc):
                    raise
                sqlstate = getattr(exc.orig, "sqlstate", None)
                error = Conflict if sqlstate == "23505" else ValidationFailed
                _fail(number, f"the {kind.name} cannot be stored: {_pg_message(exc)}", error, exc)
        first_line, last_line = batch[0][0], batch[-1][0]
        raise ValidationFailed(
            f"lines {first_line}-{last_line}: the {kind.name} records cannot be stored: {_pg_message(first)}; "
            "nothing was imported"
        ) from first


def _by_fields(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return list(groups.values())


def _insert(kind: Kind, rows: list[dict[str, Any]]) -> Any:
    """Insert ``rows``, skipping those whose primary key the organization already holds; returns a row per
    row stored."""
    table = kind.table
    conflict = [table.c.org_id, *(table.c[c] for c in kind.conflict)]
    return pg_insert(table).values(rows).on_conflict_do_nothing(index_elements=conflict).returning(table.c.org_id)


def _header(number: int, record: Any) -> ExportHeader:
    if not isinstance(record, dict) or record.get("kind") != "engram.export":
        _fail(number, 'an import starts with the export\'s header line, {"kind": "engram.export", "version": 1, …}')
    try:
        return ExportHeader.model_validate(record)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        _fail(number, f"header {where}: {first.get('msg')} (this server reads export version 1)")


def _row_fault(exc: DBAPIError) -> bool:
    """Whether the database refused a row's values (bad data, a broken constraint, an unknown text search
    configuration, a value too large for an index or a full-text vector), rather than failing for a
    reason of its own."""
    sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
    return sqlstate[:2] in {"22", "23"} or sqlstate in {"42704", "54000"}


def _pg_message(exc: DBAPIError) -> str:
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(exc.orig).splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    return f"{primary} ({detail})" if detail else str(primary)


# --- values -------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (it holds a lone surrogate)") from None
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    return number


def _vector(value: Any) -> list[float]:
    if not isinstance(value, list) or not value or len(value) > 16_000:
        raise TypeError("expected a vector: a list of 1 to 16,000 numbers")
    return [_number(x) for x in value]


def _integer(value: Any, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
        raise ValueError(f"out of range for a {bits}-bit integer")
    return value


def _json(value: Any, depth: int = 0) -> Any:
    if depth > limits.MAX_METADATA_DEPTH:
        raise ValueError(f"nested deeper than {limits.MAX_METADATA_DEPTH} levels")
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number")
    if isinstance(value, dict):
        return {_text(k): _json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v, depth + 1) for v in value]
    return value


def _timestamp(value: Any) -> datetime:
    parsed = datetime.fromisoformat(_text(value))
    parsed = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if not _EARLIEST <= parsed <= _LATEST:  # compared as instants, without converting (which could overflow)
        raise ValueError("out of range: a timestamp's UTC value must lie between the years 1 and 9999")
    return parsed


def _decode(column: Column[Any], value: Any) -> Any:
    """A value of the file as the column stores it, or ValueError/TypeError saying what was expected."""
    if value is None:
        return None
    kind = column.type
    if isinstance(kind, UUID):
        return uuid.UUID(_text(value))
    if isinstance(kind, DateTime):
        return _timestamp(value)
    if isinstance(kind, Embedding):
        return _vector(value)
    if isinstance(kind, t.VectorList):
        if not isinstance(value, list):
            raise TypeError("expected a list of vectors")
        return [_vector(v) for v in value]
    if isinstance(kind, LargeBinary):
        return bytes.fromhex(_text(value))
    if isinstance(kind, REGCONFIG):
        if not _REGCONFIG.match(_text(value)):
            raise ValueError("expected a text search configuration name such as 'english'")
        return value
    if isinstance(kind, ARRAY):
        if not isinstance(value, list):
            raise TypeError("expected a list")
        item = uuid.UUID if isinstance(kind.item_type, UUID) else str
        return [uuid.UUID(_text(v)) if item is uuid.UUID else _text(v) for v in value]
    if isinstance(kind, JSONB):  # metadata, a history entry's values: always an object
        if not isinstance(value, dict):
            raise TypeError("expected a JSON object")
        return _json(value)
    if isinstance(kind, Boolean):
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if isinstance(kind, BigInteger):
        return _integer(value, 64)
    if isinstance(kind, Integer):
        return _integer(value, 32)
    if isinstance(kind, Float):
        return _number(value)
    if isinstance(kind, Text):
        return _text(value)
    raise TypeError(f"no reader for {kind!r}")  # pragma: no cover - every column type of the schema is above

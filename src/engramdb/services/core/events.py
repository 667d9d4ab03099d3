"""The event outbox: what a change tells the org's webhook endpoints, written in the change's transaction.

* :func:`emit` is called by an operation inside the transaction that writes a change: it finds the org's
  enabled endpoints subscribed to the event (one indexed query, nothing more when there are none),
  inserts a ``webhook_delivery`` row for each and defers the queue job that sends it. The change, its
  deliveries and their jobs commit together, so no event is lost or sent for a change rolled back.
* **Erasure.** The log must not outlive the data it describes: :func:`redact` (a memory purged, a
  document deleted) and :func:`redact_erased` (a subject erased: a user, agent, session, document or
  repository), called in the erasing transaction, cut the ``data`` of every delivery about the erased
  rows down to ids and ``"redacted": true``, and the responses their attempts logged (an endpoint may
  echo what it was sent). The rows and their attempts stay; a pending attempt or a replay sends what the
  row holds then, so the redacted payload. A subject's erasure goes further: every erased id anywhere in
  the log becomes the erasure's pseudonym (``core/pseudonyms.py``), and its one event (``user.deleted``,
  ``user.erased`` …), which must name the subject to be of use, forgets it once it has been sent or has
  failed for good (:func:`settle`).

Sending is the webhooks area's (``services/webhooks/delivery.py``); this module only writes rows, so
every area may emit events without importing the webhooks area.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import (
    ColumnElement,
    Text,
    any_,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import ids
from engramdb.schemas.webhooks import (
    ALSO_SENT_TO,
)
from engramdb.services.core.pseudonyms import Pseudonym
from engramdb.storage import queue
from engramdb.storage import tables as t

w = t.webhook_endpoint
d = t.webhook_delivery


# --- the outbox --------------------------------------------------------------------------------------


async def emit(
    conn: AsyncConnection, *, org_id: uuid.UUID, event_type: str, data: Mapping[str, Any]
) -> uuid.UUID | None:
    """Queue ``event_type`` for every enabled endpoint of the org subscribed to it, in ``conn``'s
    transaction. ``data`` may hold models, UUIDs and datetimes (made JSON only when someone listens).
    Returns the event id, or None when no endpoint wants it."""
    wanted = [event_type, "*", *ALSO_SENT_TO.get(event_type, ())]
    subscribed = select(w.c.id).where(w.c.org_id == org_id, w.c.enabled, w.c.event_types.overlap(wanted))
    endpoint_ids = list((await conn.execute(subscribed)).scalars())
    if not endpoint_ids:
        return None
    rows = await enqueue(conn, org_id, endpoint_ids, event_type, data)
    return uuid.UUID(str(rows[0]["event_id"]))


async def enqueue(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    endpoint_ids: Sequence[uuid.UUID],
    event_type: str,
    data: Mapping[str, Any],
) -> list[dict[str, Any]]:
    event_id = ids.uuid7()
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    payload = {"type": event_type, "timestamp": stamp, "data": to_jsonable_python(data)}
    values = []
    for endpoint_id in endpoint_ids:
        delivery_id = ids.uuid7()
        job = await queue.defer(conn, queue.DELIVER_WEBHOOK, {"org_id": str(org_id), "delivery_id": str(delivery_id)})
        values.append(
            {
                "org_id": org_id,
                "id": delivery_id,
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "event_type": event_type,
                "payload": payload,
                "queue_job_id": job,
                "next_attempt_at": func.now(),
            }
        )
    return [dict(r) for r in (await conn.execute(insert(d).values(values).returning(d))).mappings()]


# --- erasure: redacting the delivery log ---------------------------------------------------------------

# What a redacted delivery keeps of the object it was about: ids (and, for a job, its kind and status).
# Everything else in ``data`` goes: content, tags, metadata, titles, paths, reasons, a job's result.
REDACTED_KEEPS: dict[str, tuple[str, ...]] = {
    "memory": ("id", "user_id", "agent_id", "team_id", "app_id", "session_id"),
    "fact": ("id", "user_id", "agent_id", "session_id", "subject_id", "object_id", "replaces_id", "invalidated_by"),
    "document": ("id", "repository_id", "user_id", "agent_id", "app_id"),
    "job": ("id", "kind", "status", "session_id", "user_id"),
    "task": ("id", "queue", "state", "user_id", "created_by", "assigned_to", "claimed_by"),
}


# An attempt log without the responses the endpoint gave (they may quote the payload they answer).
_SILENT_LOG = literal_column(
    "(SELECT coalesce(jsonb_agg(e.value || '{\"response\": null}'::jsonb ORDER BY e.ordinality), '[]'::jsonb)"
    " FROM jsonb_array_elements(webhook_delivery.attempt_log) WITH ORDINALITY AS e)",
    JSONB,
)


def _about(kind: str, key: str) -> ColumnElement[str]:
    """``payload.data.<kind>.<key>`` as text (null when the delivery is not about a ``kind``)."""
    found: ColumnElement[str] = d.c.payload[("data", kind, key)].astext
    return found


def _json_object(*pairs: tuple[str, Any]) -> ColumnElement[Any]:
    args = [x for key, value in pairs for x in (cast(key, Text), value)]
    return func.jsonb_build_object(*args, type_=JSONB)


async def _redact(conn: AsyncConnection, org_id: uuid.UUID, kind: str, match: ColumnElement[bool]) -> int:
    data = ("data",)
    kept = _json_object(*((key, d.c.payload[(*data, kind, key)]) for key in REDACTED_KEEPS[kind]))
    head = func.jsonb_strip_nulls(
        _json_object(("object", d.c.payload[(*data, "object")]), ("action", d.c.payload[(*data, "action")])),
        type_=JSONB,
    )
    redacted = head.op("||", return_type=JSONB)(_json_object(("redacted", true()), (kind, kept)))
    payload = d.c.payload.op("||", return_type=JSONB)(_json_object(("data", redacted)))
    stmt = (
        update(d)
        .where(
            d.c.org_id == org_id,
            _about(kind, "id").is_not(None),
            match,
            d.c.payload[(*data, "redacted")].astext.is_distinct_from("true"),
        )
        .values(payload=payload, attempt_log=_SILENT_LOG, updated_at=func.now())
    )
    return (await conn.execute(stmt)).rowcount


async def redact(
    conn: AsyncConnection, org_id: uuid.UUID, kind: str, object_ids: Sequence[uuid.UUID], *, key: str = "id"
) -> int:
    """In ``conn``'s transaction (the erasure's), cut every delivery about these ``kind`` objects (``memory``,
    ``fact``, ``document``, ``job``) down to ids and ``"redacted": true``. ``key`` picks them by another of
    their ids (``"repository_id"``: a repository's documents). Returns the deliveries changed.

    The rows stay (the log still shows that the event was sent, and its attempts); a pending delivery or
    a replay sends the redacted payload, as the same event. Costs one pass over the org's log (kept
    ``ENGRAM_WEBHOOK_RETENTION_DAYS``)."""
    if not object_ids:
        return 0
    if key not in REDACTED_KEEPS[kind]:
        raise ValueError(f"a redacted {kind} keeps no {key}")
    return await _redact(conn, org_id, kind, _about(kind, key).in_([str(i) for i in object_ids]))


def _named(value: ColumnElement[str], ids: Sequence[uuid.UUID]) -> ColumnElement[bool]:
    """SQL: the text ``value`` is one of ``ids`` (one array parameter, however many)."""
    return value == any_(bindparam(None, [str(i) for i in ids], type_=ARRAY(Text)))


async def redact_erased(
    conn: AsyncConnection,
    org_id: uuid.UUID,
    pseudonym: Pseudonym,
    erased: Mapping[str, Sequence[uuid.UUID]],
    *,
    owner: tuple[str, uuid.UUID] | None = None,
) -> int:
    """:func:`redact` for a subject's erasure (``governance/erasure.py``): every delivery about an erased
    memory, fact, document (or a document of an erased repository) or job (or a job of an erased session),
    and, when the subject is a user or an agent (``owner``: ``("user_id", id)``), about any object it owns
    (a memory purged before is found so too); then every erased id left in any delivery of the org (the
    ids a redacted delivery keeps, another user's memory that named an erased session) becomes the
    ``pseudonym``. ``erased`` maps ``memory``, ``fact``, ``document``, ``repository``, ``session``, ``job``
    and ``task`` to ids. Call it before the erasure's own event is raised (that event names the subject)."""
    also = {"document": ("repository_id", "repository"), "job": ("session_id", "session")}
    redacted = 0
    for kind, keeps in REDACTED_KEEPS.items():
        match = []
        if erased.get(kind):
            match.append(_named(_about(kind, "id"), erased[kind]))
        if kind in also and erased.get(also[kind][1]):
            match.append(_named(_about(kind, also[kind][0]), erased[also[kind][1]]))
        if owner is not None and owner[0] in keeps:
            match.append(_about(kind, owner[0]) == str(owner[1]))
        if match:
            redacted += await _redact(conn, org_id, kind, or_(*match))
    await pseudonym.rewrite(conn, d, ("payload", "attempt_log"), d.c.org_id == org_id)
    return redacted


# Events that tell of an erasure: they name what was erased (``data.<object>``), or they would be of no use
# to whoever must erase it too, until they have been sent (:func:`settle`).
ERASURE_EVENT = "user.deleted"
ERASURE_EVENTS = frozenset(
    {ERASURE_EVENT, "user.erased", "agent.erased", "session.erased", "document.erased", "repository.erased"}
)


async def settle(conn: AsyncConnection, org_id: uuid.UUID, delivery_id: uuid.UUID) -> None:
    """A delivery has ended (sent, or failed for good). If it told of an erasure, it has told whoever
    could use the erased id: the log now forgets whom (``data.<object>``, ``data.user`` for a user, goes;
    ``"redacted": true`` comes), so a replay sends it without the id. Called in the transaction that
    records the end."""
    data = d.c.payload["data"]
    forgotten = data.op("-", return_type=JSONB)(data["object"].astext).op("||", return_type=JSONB)(
        _json_object(("redacted", true()))
    )
    stmt = (
        update(d)
        .where(
            d.c.org_id == org_id,
            d.c.id == delivery_id,
            d.c.event_type.in_(sorted(ERASURE_EVENTS)),
            d.c.payload[("data", "redacted")].astext.is_distinct_from("true"),
        )
        .values(payload=d.c.payload.op("||", return_type=JSONB)(_json_object(("data", forgotten))))
    )
    await conn.execute(stmt)

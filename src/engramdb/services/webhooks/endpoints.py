"""Webhooks: endpoints, the outbox of events, and their delivery.

* **Outbox.** :func:`emit` is called by a service inside the transaction that writes a change: it finds
  the org's enabled endpoints subscribed to the event (one indexed query, nothing more when there are
  none), inserts a ``webhook_delivery`` row for each and defers the queue job that sends it. The change,
  its deliveries and their jobs commit together, so no event is lost or sent for a change rolled back.
* **Delivery.** :func:`deliver` (the ``engram.deliver_webhook`` task) POSTs the payload, signed per
  Standard Webhooks (``engramdb.webhooks``), outside any transaction, then records the attempt on the
  row. Network errors, 408, 429 and 5xx are retried by deferring the job again, after
  ``ENGRAM_WEBHOOK_RETRY_BASE_S`` doubled at each attempt, up to ``ENGRAM_WEBHOOK_MAX_ATTEMPTS``; other
  statuses fail at once. A replay is one more attempt of the same event (same ``webhook-id``).
* Delivery is at least once: a worker that dies after the POST but before recording it sends it again.
* **Erasure.** The log must not outlive the data it describes: :func:`redact` (a memory purged) and
  :func:`redact_user` (a user deleted), called in the erasing transaction, cut the ``data`` of every
  delivery about the erased rows down to ids and ``"redacted": true``. The rows and their attempts stay;
  a pending attempt or a replay sends what the row holds then, so the redacted payload.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic_core import to_jsonable_python
from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from engramdb import __version__, ids, limits
from engramdb import webhooks as signing
from engramdb.config import Settings
from engramdb.errors import Conflict, InvalidRequest
from engramdb.schemas.common import Page
from engramdb.schemas.webhooks import (
    ALSO_SENT_TO,
    TEST_EVENT,
    DeliveryStatus,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
    WebhookUpdate,
)
from engramdb.services.core import audit
from engramdb.services.core.caller import Caller
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.repo import one_or_404, page_by_id

w = t.webhook_endpoint
d = t.webhook_delivery
SECRET_GRACE = timedelta(hours=24)  # a rotated-out secret still signs deliveries this long
MAX_BACKOFF_S = 6 * 3600  # no wait between attempts is longer, whatever Retry-After says
LOGGED_ATTEMPTS = 50
RESPONSE_CHARS = 500
_LOCK = 0x77686B73  # advisory lock namespace ('whks'): endpoint creation, one org at a time
_PUBLIC = [c for c in w.c if c.name not in {"org_id", "secret", "previous_secret"}]


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
    rows = await _enqueue(conn, org_id, endpoint_ids, event_type, data)
    return uuid.UUID(str(rows[0]["event_id"]))


async def _enqueue(
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
}


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
        .values(payload=payload, updated_at=func.now())
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


async def redact_user(conn: AsyncConnection, org_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """:func:`redact` for a user being deleted: every delivery about their memories, facts, documents
    (their own, or in their repositories) and jobs (theirs, or of their sessions). Call it before the
    user's rows are deleted (repositories and sessions are looked up)."""
    uid = str(user_id)
    repo, sess = t.repository, t.session
    repositories = select(cast(repo.c.id, Text)).where(repo.c.org_id == org_id, repo.c.user_id == user_id)
    sessions = select(cast(sess.c.id, Text)).where(sess.c.org_id == org_id, sess.c.user_id == user_id)
    matches = {
        "memory": _about("memory", "user_id") == uid,
        "fact": _about("fact", "user_id") == uid,
        "document": or_(_about("document", "user_id") == uid, _about("document", "repository_id").in_(repositories)),
        "job": or_(_about("job", "user_id") == uid, _about("job", "session_id").in_(sessions)),
    }
    return sum([await _redact(conn, org_id, kind, match) for kind, match in matches.items()])


# --- endpoints (admin) -------------------------------------------------------------------------------


def _endpoint_query(caller: Caller, webhook_id: uuid.UUID) -> Select[Any]:
    return select(*_PUBLIC).where(w.c.org_id == caller.org_id, w.c.id == webhook_id)


async def create(db: Database, caller: Caller, body: WebhookCreate) -> WebhookCreated:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        await conn.execute(select(func.pg_advisory_xact_lock(_LOCK, func.hashtext(str(caller.org_id)))))
        count = await conn.scalar(select(func.count()).select_from(w).where(w.c.org_id == caller.org_id))
        if (count or 0) >= limits.MAX_WEBHOOKS:
            raise InvalidRequest(f"an organization may have at most {limits.MAX_WEBHOOKS} webhook endpoints")
        secret = signing.generate_secret()
        stmt = insert(w).values(
            org_id=caller.org_id,
            id=ids.uuid7(),
            url=body.url,
            description=body.description,
            event_types=list(body.event_types),
            enabled=body.enabled,
            secret=secret,
        )
        row = dict((await conn.execute(stmt.returning(*_PUBLIC))).mappings().one())
        details = {"url": body.url, "event_types": row["event_types"]}
        await audit.record(conn, caller, "webhook.created", "webhook", row["id"], details)
    return WebhookCreated.model_validate({**row, "secret": secret})


async def list_webhooks(db: Database, caller: Caller, *, cursor: str | None, limit: int) -> Page[Webhook]:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        query = select(*_PUBLIC).where(w.c.org_id == caller.org_id)
        rows, next_cursor = await page_by_id(conn, query, w, cursor=cursor, limit=limit)
    return Page[Webhook](data=[Webhook.model_validate(r) for r in rows], next_cursor=next_cursor)


async def get(db: Database, caller: Caller, webhook_id: uuid.UUID) -> Webhook:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, _endpoint_query(caller, webhook_id), "webhook", webhook_id)
    return Webhook.model_validate(row)


async def update_webhook(db: Database, caller: Caller, webhook_id: uuid.UUID, body: WebhookUpdate) -> Webhook:
    caller.require("admin")
    changes = body.model_dump(exclude_unset=True)
    for name in ("url", "event_types", "enabled"):  # not nullable: null leaves them as they are
        if changes.get(name, 0) is None:
            changes.pop(name)
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, _endpoint_query(caller, webhook_id).with_for_update(), "webhook", webhook_id)
        if changes:
            stmt = update(w).where(w.c.org_id == caller.org_id, w.c.id == webhook_id)
            row = dict(
                (await conn.execute(stmt.values(**changes, updated_at=func.now()).returning(*_PUBLIC))).mappings().one()
            )
            details = {"fields": sorted(changes)}
            await audit.record(conn, caller, "webhook.updated", "webhook", webhook_id, details)
    return Webhook.model_validate(row)


async def delete_webhook(db: Database, caller: Caller, webhook_id: uuid.UUID) -> None:
    """Delete an endpoint and its delivery log; its pending deliveries are dropped."""
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, _endpoint_query(caller, webhook_id).with_for_update(), "webhook", webhook_id)
        await conn.execute(delete(w).where(w.c.org_id == caller.org_id, w.c.id == webhook_id))
        await audit.record(conn, caller, "webhook.deleted", "webhook", webhook_id, {"url": row["url"]})


async def rotate_secret(db: Database, caller: Caller, webhook_id: uuid.UUID) -> WebhookCreated:
    """A new secret; the old one keeps signing deliveries (as a second signature) for ``SECRET_GRACE``."""
    caller.require("admin")
    secret = signing.generate_secret()
    async with db.tenant(caller.org_id) as conn:
        await one_or_404(conn, _endpoint_query(caller, webhook_id).with_for_update(), "webhook", webhook_id)
        stmt = (
            update(w)
            .where(w.c.org_id == caller.org_id, w.c.id == webhook_id)
            .values(
                secret=secret,
                previous_secret=w.c.secret,
                previous_secret_expires_at=func.now() + SECRET_GRACE,
                updated_at=func.now(),
            )
            .returning(*_PUBLIC)
        )
        row = dict((await conn.execute(stmt)).mappings().one())
        await audit.record(conn, caller, "webhook.secret_rotated", "webhook", webhook_id)
    return WebhookCreated.model_validate({**row, "secret": secret})


async def send_test(db: Database, caller: Caller, webhook_id: uuid.UUID) -> WebhookDelivery:
    """Queue a ``webhook.test`` event to this endpoint alone (subscribed to it or not)."""
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, _endpoint_query(caller, webhook_id), "webhook", webhook_id)
        if not row["enabled"]:
            raise Conflict(f"webhook {webhook_id} is disabled; enable it to send it events")
        data = {"webhook_id": webhook_id, "message": "a test event from Engram"}
        (delivery,) = await _enqueue(conn, caller.org_id, [webhook_id], TEST_EVENT, data)
        await audit.record(conn, caller, "webhook.tested", "webhook", webhook_id, {"delivery_id": str(delivery["id"])})
    return WebhookDelivery.model_validate(delivery)


# --- the delivery log --------------------------------------------------------------------------------


async def list_deliveries(
    db: Database,
    caller: Caller,
    webhook_id: uuid.UUID,
    *,
    status: DeliveryStatus | None,
    event_type: str | None,
    cursor: str | None,
    limit: int,
) -> Page[WebhookDelivery]:
    """Newest first."""
    caller.require("admin")
    query = select(d).where(d.c.org_id == caller.org_id, d.c.endpoint_id == webhook_id)
    if status is not None:
        query = query.where(d.c.status == status)
    if event_type is not None:
        query = query.where(d.c.event_type == event_type)
    async with db.tenant(caller.org_id) as conn:
        await one_or_404(conn, _endpoint_query(caller, webhook_id), "webhook", webhook_id)
        rows, next_cursor = await page_by_id(conn, query, d, cursor=cursor, limit=limit)
    return Page[WebhookDelivery](data=[WebhookDelivery.model_validate(r) for r in rows], next_cursor=next_cursor)


def _delivery_query(caller: Caller, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> Select[Any]:
    return select(d).where(d.c.org_id == caller.org_id, d.c.endpoint_id == webhook_id, d.c.id == delivery_id)


async def get_delivery(db: Database, caller: Caller, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, _delivery_query(caller, webhook_id, delivery_id), "delivery", delivery_id)
    return WebhookDelivery.model_validate(row)


async def replay(db: Database, caller: Caller, webhook_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a finished delivery once more, now, as the same event (same ``webhook-id``, same payload; a
    redacted payload stays redacted)."""
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        endpoint = await one_or_404(conn, _endpoint_query(caller, webhook_id), "webhook", webhook_id)
        row = await one_or_404(
            conn, _delivery_query(caller, webhook_id, delivery_id).with_for_update(), "delivery", delivery_id
        )
        if row["status"] == "pending":
            raise Conflict(f"delivery {delivery_id} is still pending; its next attempt is queued")
        if not endpoint["enabled"]:
            raise Conflict(f"webhook {webhook_id} is disabled; enable it before replaying its deliveries")
        args = {"org_id": str(caller.org_id), "delivery_id": str(delivery_id)}
        job = await queue.defer(conn, queue.DELIVER_WEBHOOK, args)
        stmt = (
            update(d)
            .where(d.c.org_id == caller.org_id, d.c.id == delivery_id)
            .values(
                status="pending",
                max_attempts=d.c.attempts + 1,
                replays=d.c.replays + 1,
                next_attempt_at=func.now(),
                queue_job_id=job,
                updated_at=func.now(),
            )
            .returning(d)
        )
        row = dict((await conn.execute(stmt)).mappings().one())
        await audit.record(conn, caller, "webhook_delivery.replayed", "webhook_delivery", delivery_id)
    return WebhookDelivery.model_validate(row)


# --- delivery (the queue task) -----------------------------------------------------------------------


@dataclass
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: int
    response: str | None = None
    retry_after_s: float | None = None
    sent: bool = True  # False: not sent at all (the endpoint is disabled), so not retried either

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        code = self.status_code
        return self.sent and (code is None or code in (408, 429) or code >= 500)


def backoff_s(settings: Settings, attempt: int, retry_after_s: float | None = None) -> float:
    """The wait after failed attempt number ``attempt`` (1-based): the base, doubled each time, or the
    endpoint's Retry-After if longer; never more than ``MAX_BACKOFF_S``."""
    wait = settings.webhook_retry_base_s * 2 ** (attempt - 1)
    if retry_after_s is not None:
        wait = max(wait, retry_after_s)
    return float(min(wait, MAX_BACKOFF_S))


async def deliver(
    db: Database, settings: Settings, org_id: uuid.UUID, delivery_id: uuid.UUID, *, queue_job_id: int
) -> dict[str, Any] | None:
    """One attempt of a delivery, recorded. None when the job is stale (the delivery was deleted, already
    finished, or replayed by another job)."""
    endpoint = (w.c.url, w.c.enabled, w.c.secret, w.c.previous_secret, w.c.previous_secret_expires_at)
    join = and_(w.c.org_id == d.c.org_id, w.c.id == d.c.endpoint_id)
    async with db.tenant(org_id) as conn:
        query = select(d, *endpoint).join_from(d, w, join).where(d.c.org_id == org_id, d.c.id == delivery_id)
        found = (await conn.execute(query)).mappings().first()
    row = dict(found) if found is not None else None
    if row is None or row["status"] != "pending" or row["queue_job_id"] != queue_job_id:
        return None
    if not row["enabled"]:
        attempt = Attempt(None, "not sent: the endpoint is disabled", 0, sent=False)
    else:
        attempt = await _post(settings, row)
    return await _record(db, settings, org_id, delivery_id, queue_job_id, attempt)


async def _post(settings: Settings, row: Mapping[str, Any]) -> Attempt:
    body = json.dumps(row["payload"], separators=(",", ":"), ensure_ascii=False).encode()
    keys = [row["secret"]]
    expires = row["previous_secret_expires_at"]
    if row["previous_secret"] and expires is not None and expires > datetime.now(UTC):
        keys.append(row["previous_secret"])
    headers = {
        "content-type": "application/json",
        "user-agent": f"Engram-Webhooks/{__version__}",
        **signing.signed_headers(keys, str(row["event_id"]), body),
    }
    started = time.monotonic()
    status: int | None = None
    try:
        async with asyncio.timeout(settings.webhook_timeout_s):
            url, extensions = str(row["url"]), dict[str, Any]()
            if settings.webhook_block_private:
                url, host, extensions = await public_destination(url)
                headers["host"] = host
            async with (
                httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False) as client,
                client.stream("POST", url, content=body, headers=headers, extensions=extensions) as response,
            ):
                status = response.status_code
                head = await _head(response)
                retry_after = _retry_after(response.headers.get("retry-after"))
    except TimeoutError:
        return Attempt(status, f"timed out after {settings.webhook_timeout_s:g} s", _ms_since(started))
    except PrivateDestination as exc:  # not sent, and sending again will not help
        return Attempt(None, str(exc), _ms_since(started), sent=False)
    except Exception as exc:  # any failure to talk to the endpoint is this attempt's outcome, not a crash
        return Attempt(status, f"{type(exc).__name__}: {exc}"[:1000], _ms_since(started))
    failure = None if 200 <= status < 300 else f"HTTP {status}"
    return Attempt(status, failure, _ms_since(started), head, retry_after)


class PrivateDestination(Exception):
    """The endpoint's host is not on the public internet (ENGRAM_WEBHOOK_BLOCK_PRIVATE)."""


async def public_destination(url: str) -> tuple[str, str, dict[str, Any]]:
    """Resolve the URL's host once and check every address is global; return the URL pinned to one of
    them (so a DNS answer that changes between the check and the connection cannot redirect it), the
    Host header, and the TLS server name to present."""
    parsed = httpx.URL(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise PrivateDestination(f"cannot resolve {host}: {exc}") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    for address in addresses:
        if not ipaddress.ip_address(address.split("%", 1)[0]).is_global:
            raise PrivateDestination(
                f"not sent: {host} is at {address}, a loopback, private or reserved address "
                "(ENGRAM_WEBHOOK_BLOCK_PRIVATE is on)"
            )
    if not addresses:
        raise PrivateDestination(f"cannot resolve {host}")
    pinned = parsed.copy_with(host=addresses[0])
    extensions: dict[str, Any] = {} if host == addresses[0] else {"sni_hostname": host}  # TLS checks the name
    return str(pinned), parsed.netloc.decode("ascii"), extensions


async def _head(response: httpx.Response) -> str:
    """The start of the response body, without reading a large one whole."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_CHARS * 4:
            break
    return b"".join(chunks).decode("utf-8", errors="replace")[:RESPONSE_CHARS]


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the exponential wait applies


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def _record(
    db: Database, settings: Settings, org_id: uuid.UUID, delivery_id: uuid.UUID, queue_job_id: int, attempt: Attempt
) -> dict[str, Any] | None:
    now = datetime.now(UTC)
    async with db.tenant(org_id) as conn:
        query = select(d.c.status, d.c.queue_job_id, d.c.attempts, d.c.max_attempts, d.c.attempt_log)
        row = (
            (await conn.execute(query.where(d.c.org_id == org_id, d.c.id == delivery_id).with_for_update()))
            .mappings()
            .first()
        )
        if row is None or row["status"] != "pending" or row["queue_job_id"] != queue_job_id:
            return None  # deleted or replayed while the request was out
        attempts = row["attempts"] + 1
        entry = {
            "at": now.isoformat(),
            "status_code": attempt.status_code,
            "error": attempt.error,
            "duration_ms": attempt.duration_ms,
            "response": attempt.response,
        }
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": attempt.status_code,
            "last_error": attempt.error,
            "last_attempt_at": now,
            "attempt_log": [*row["attempt_log"], entry][-LOGGED_ATTEMPTS:],
            "next_attempt_at": None,
            "updated_at": func.now(),
        }
        limit = row["max_attempts"] or settings.webhook_max_attempts
        if attempt.ok:
            values.update(status="succeeded", delivered_at=now)
        elif attempt.retryable and attempts < limit:
            due = now + timedelta(seconds=backoff_s(settings, attempts, attempt.retry_after_s))
            args = {"org_id": str(org_id), "delivery_id": str(delivery_id)}
            values["queue_job_id"] = await queue.defer(conn, queue.DELIVER_WEBHOOK, args, scheduled_at=due)
            values["next_attempt_at"] = due
        else:
            values["status"] = "failed"
        await conn.execute(update(d).where(d.c.org_id == org_id, d.c.id == delivery_id).values(**values))
    return {"status": values.get("status", "pending"), "attempts": attempts, "status_code": attempt.status_code}


# --- upkeep (the worker's periodic tasks) --------------------------------------------------------------

_ORPHANS = text(
    """SELECT d.org_id, d.id, d.queue_job_id FROM webhook_delivery d
       LEFT JOIN procrastinate.procrastinate_jobs q ON q.id = d.queue_job_id
       WHERE d.status = 'pending'
         AND coalesce(d.next_attempt_at, d.updated_at) < now() - make_interval(secs => :quiet_s)
         AND (q.id IS NULL OR q.status NOT IN ('todo', 'doing'))
       LIMIT 1000"""
)


async def requeue_orphans(db: Database, *, quiet_s: float) -> int:
    """Queue again the pending deliveries whose queue job ended without finishing them (it failed on an
    unexpected error, or was deleted): their delivery is still owed."""
    async with db.system() as conn:
        orphans = (await conn.execute(_ORPHANS, {"quiet_s": quiet_s})).mappings().all()
    for row in orphans:
        async with db.tenant(row["org_id"]) as conn:
            args = {"org_id": str(row["org_id"]), "delivery_id": str(row["id"])}
            job = await queue.defer(conn, queue.DELIVER_WEBHOOK, args)
            await conn.execute(
                update(d)
                .where(
                    d.c.org_id == row["org_id"],
                    d.c.id == row["id"],
                    d.c.status == "pending",
                    d.c.queue_job_id.is_not_distinct_from(row["queue_job_id"]),
                )
                .values(queue_job_id=job, next_attempt_at=func.now(), updated_at=func.now())
            )
    return len(orphans)


async def prune(db: Database, *, retention_days: int, batch: int = 5_000) -> int:
    """Delete finished deliveries older than ``retention_days`` (the delivery log's retention)."""
    old = (
        select(d.c.org_id, d.c.id)
        .where(d.c.status != "pending", d.c.created_at < func.now() - timedelta(days=retention_days))
        .limit(batch)
    )
    deleted = 0
    while True:
        async with db.system() as conn:
            keys = (await conn.execute(old)).all()
            if keys:
                pairs = [(k.org_id, k.id) for k in keys]
                await conn.execute(delete(d).where(tuple_(d.c.org_id, d.c.id).in_(pairs)))
        deleted += len(keys)
        if len(keys) < batch:
            return deleted

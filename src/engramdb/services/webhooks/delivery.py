"""Webhook delivery: the ``engram.deliver_webhook`` queue task and the worker's upkeep of the log.

* Deliveries have their own lane (``queue.WEBHOOKS``) and each organization its own line in it: a
  delivery job is first deferred without a lock (by the event, a replay, a retry coming due, the
  upkeep); :func:`line_up` defers it again under one of its org's ``ENGRAM_WEBHOOK_ORG_CONCURRENCY``
  locks (:func:`org_lock`). procrastinate runs one job per lock at a time and skips the later jobs of a
  busy lock when it fetches, so at most that many deliveries of one org are sent at once, across all
  workers, and a backlog of one org waits in the queue without holding the lane.
* :func:`deliver` POSTs the payload, signed per Standard Webhooks (``engramdb.webhooks``), outside any
  transaction, through the worker's pooled client (``sender.py``), to a checked address only
  (``destinations.py``), then records the attempt on the row: status and timing (and the start of the
  response only with ``ENGRAM_WEBHOOK_RESPONSE_CHARS``). Network errors, 408, 429 and 5xx are retried by
  deferring the job again, after ``ENGRAM_WEBHOOK_RETRY_BASE_S`` doubled at each attempt, up to
  ``ENGRAM_WEBHOOK_MAX_ATTEMPTS``; other statuses fail at once. A replay is one more attempt of the same
  event (same ``webhook-id``).
* Delivery is at least once: a worker that dies after the POST but before recording it sends it again.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import (
    and_,
    delete,
    func,
    select,
    text,
    tuple_,
    update,
)

from engramdb import metrics
from engramdb import webhooks as signing
from engramdb._version import __version__
from engramdb.config import Settings
from engramdb.services.core import events
from engramdb.services.webhooks.destinations import DestinationRefused
from engramdb.services.webhooks.sender import Sender
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.database import Database

w = t.webhook_endpoint
d = t.webhook_delivery
SECRET_GRACE = timedelta(hours=24)  # a rotated-out secret still signs deliveries this long
MAX_BACKOFF_S = 6 * 3600  # no wait between attempts is longer, whatever Retry-After says
LOGGED_ATTEMPTS = 50
DRAIN_BYTES = 64 * 1024  # an answer longer than this is not read to its end: its connection is closed, not reused
LOCK_PREFIX = "webhook:"
_LOCK = 0x77686B73  # advisory lock namespace ('whks'): endpoint creation, one org at a time
_PUBLIC = [c for c in w.c if c.name not in {"org_id", "secret", "previous_secret"}]


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


def org_lock(org_id: uuid.UUID, delivery_id: uuid.UUID, slots: int) -> str:
    """The procrastinate lock of a delivery in its org's line: one of ``slots`` per org, by delivery id."""
    return f"{LOCK_PREFIX}{org_id}:{delivery_id.int % slots}"


def in_line(lock: str | None) -> bool:
    """Whether a delivery job holds its org's lock (else it must :func:`line_up` first)."""
    return lock is not None and lock.startswith(LOCK_PREFIX)


async def line_up(
    db: Database, settings: Settings, org_id: uuid.UUID, delivery_id: uuid.UUID, *, queue_job_id: int
) -> dict[str, Any] | None:
    """Put a pending delivery in its org's line: its job again, under :func:`org_lock`, named on the row.
    None when the job is stale."""
    async with db.tenant(org_id) as conn:
        query = select(d.c.status, d.c.queue_job_id).where(d.c.org_id == org_id, d.c.id == delivery_id)
        row = (await conn.execute(query.with_for_update())).mappings().first()
        if row is None or row["status"] != "pending" or row["queue_job_id"] != queue_job_id:
            return None
        lock = org_lock(org_id, delivery_id, settings.webhook_org_concurrency)
        args = {"org_id": str(org_id), "delivery_id": str(delivery_id)}
        job = await queue.defer(conn, queue.DELIVER_WEBHOOK, args, lock=lock)
        await conn.execute(
            update(d).where(d.c.org_id == org_id, d.c.id == delivery_id).values(queue_job_id=job, updated_at=func.now())
        )
    return {"status": "pending", "lock": lock}


async def deliver(
    db: Database,
    settings: Settings,
    org_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    queue_job_id: int,
    sender: Sender | None = None,
) -> dict[str, Any] | None:
    """One attempt of a delivery, recorded. None when the job is stale (the delivery was deleted, already
    finished, or replayed by another job). ``sender`` is the worker's client; without one, a client is
    made for this attempt alone (a one-off call)."""
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
    elif sender is None:
        async with Sender(settings) as once:
            attempt = await _post(once, row)
    else:
        attempt = await _post(sender, row)
    return await _record(db, settings, org_id, delivery_id, queue_job_id, attempt)


async def _post(sender: Sender, row: Mapping[str, Any]) -> Attempt:
    settings = sender.settings
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
        async with (
            asyncio.timeout(settings.webhook_timeout_s),
            sender.client.stream("POST", str(row["url"]), content=body, headers=headers) as response,
        ):
            status = response.status_code
            retry_after = _retry_after(response.headers.get("retry-after"))
            head = await _drain(response, settings.webhook_response_chars)
    except TimeoutError:
        return Attempt(status, f"timed out after {settings.webhook_timeout_s:g} s", _ms_since(started))
    except DestinationRefused as exc:  # not sent, and sending again will not help
        return Attempt(None, str(exc), _ms_since(started), sent=False)
    except Exception as exc:  # any failure to talk to the endpoint is this attempt's outcome, not a crash
        return Attempt(status, f"{type(exc).__name__}: {exc}"[:1000], _ms_since(started))
    failure = None if 200 <= status < 300 else f"HTTP {status}"
    return Attempt(status, failure, _ms_since(started), head, retry_after)


async def _drain(response: httpx.Response, chars: int) -> str | None:
    """Read the answer (up to ``DRAIN_BYTES``) so its connection can carry the next delivery; keep its first
    ``chars`` characters only when the operator asked for them (``ENGRAM_WEBHOOK_RESPONSE_CHARS``)."""
    kept = bytearray()
    size = 0
    async for chunk in response.aiter_raw():
        if len(kept) < chars * 4:
            kept += chunk[: chars * 4 - len(kept)]
        size += len(chunk)
        if size > DRAIN_BYTES:
            break
    return kept.decode("utf-8", errors="replace")[:chars] if chars else None


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
        if "status" in values:  # ended: an erasure's event forgets whom it named
            await events.settle(conn, org_id, delivery_id)
    outcome = values.get("status", "pending")
    metrics.WEBHOOK_DELIVERIES.labels("retrying" if outcome == "pending" else outcome).inc()
    return {"status": outcome, "attempts": attempts, "status_code": attempt.status_code}


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

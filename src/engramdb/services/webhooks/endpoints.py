"""Webhook endpoints (admin): create, list, update, delete, rotate the secret, send a test event; and the
delivery log with replay. Events are written by ``core/events.py``; attempts are made by ``delivery.py``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Select,
    delete,
    func,
    insert,
    select,
    update,
)

from engramdb import ids, limits
from engramdb import webhooks as signing
from engramdb.errors import Conflict, InvalidRequest, ValidationFailed
from engramdb.schemas.common import Page
from engramdb.schemas.webhooks import (
    TEST_EVENT,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
    WebhookDeliveryFilters,
    WebhookFilters,
    WebhookUpdate,
)
from engramdb.services.core import audit, events
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.webhooks import destinations
from engramdb.storage import queue
from engramdb.storage import tables as t
from engramdb.storage.database import Database
from engramdb.storage.filters import matching
from engramdb.storage.repo import one_or_404, page_by_id

w = t.webhook_endpoint
d = t.webhook_delivery
SECRET_GRACE = timedelta(hours=24)  # a rotated-out secret still signs deliveries this long
MAX_BACKOFF_S = 6 * 3600  # no wait between attempts is longer, whatever Retry-After says
LOGGED_ATTEMPTS = 50
_LOCK = 0x77686B73  # advisory lock namespace ('whks'): endpoint creation, one org at a time
_PUBLIC = [c for c in w.c if c.name not in {"org_id", "secret", "previous_secret"}]


# --- endpoints (admin) -------------------------------------------------------------------------------


def _endpoint_query(caller: Caller, webhook_id: uuid.UUID) -> Select[Any]:
    return select(*_PUBLIC).where(w.c.org_id == caller.org_id, w.c.id == webhook_id)


def _check_destination(rt: Runtime, url: str) -> None:
    """Refuse a URL into the server's own network unless the operator allows it (``destinations.py``)."""
    reason = destinations.refusal(destinations.Policy.of(rt.settings), url)
    if reason is not None:
        error = {"location": "body/url", "message": reason, "type": "webhook_destination"}
        raise ValidationFailed(f"url: {reason}", errors=[error])


async def create(rt: Runtime, caller: Caller, body: WebhookCreate) -> WebhookCreated:
    caller.require("admin")
    _check_destination(rt, body.url)
    async with rt.db.tenant(caller.org_id) as conn:
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


async def list_webhooks(db: Database, caller: Caller, filters: WebhookFilters) -> Page[Webhook]:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        query = select(*_PUBLIC).where(w.c.org_id == caller.org_id)
        rows, next_cursor = await page_by_id(conn, query, w, cursor=filters.cursor, limit=filters.limit)
    return Page[Webhook](data=[Webhook.model_validate(r) for r in rows], next_cursor=next_cursor)


async def get(db: Database, caller: Caller, webhook_id: uuid.UUID) -> Webhook:
    caller.require("admin")
    async with db.tenant(caller.org_id) as conn:
        row = await one_or_404(conn, _endpoint_query(caller, webhook_id), "webhook", webhook_id)
    return Webhook.model_validate(row)


async def update_webhook(rt: Runtime, caller: Caller, webhook_id: uuid.UUID, body: WebhookUpdate) -> Webhook:
    caller.require("admin")
    changes = body.model_dump(exclude_unset=True)
    for name in ("url", "event_types", "enabled"):  # not nullable: null leaves them as they are
        if changes.get(name, 0) is None:
            changes.pop(name)
    if "url" in changes:
        _check_destination(rt, changes["url"])
    async with rt.db.tenant(caller.org_id) as conn:
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
        (delivery,) = await events.enqueue(conn, caller.org_id, [webhook_id], TEST_EVENT, data)
        await audit.record(conn, caller, "webhook.tested", "webhook", webhook_id, {"delivery_id": str(delivery["id"])})
    return WebhookDelivery.model_validate(delivery)


# --- the delivery log --------------------------------------------------------------------------------


async def list_deliveries(
    db: Database, caller: Caller, webhook_id: uuid.UUID, filters: WebhookDeliveryFilters
) -> Page[WebhookDelivery]:
    """Newest first."""
    caller.require("admin")
    conds = [d.c.org_id == caller.org_id, d.c.endpoint_id == webhook_id]
    query = select(d).where(*conds, *matching(d, filters, equal=("status", "event_type")))
    async with db.tenant(caller.org_id) as conn:
        await one_or_404(conn, _endpoint_query(caller, webhook_id), "webhook", webhook_id)
        rows, next_cursor = await page_by_id(conn, query, d, cursor=filters.cursor, limit=filters.limit)
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

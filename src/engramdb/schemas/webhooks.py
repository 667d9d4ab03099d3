"""Webhook endpoints (where an organization's events are sent) and their deliveries (the delivery log)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, Field, StringConstraints

from engramdb import limits
from engramdb.schemas.common import Description, PageQuery, PublicModel, StrictModel

# The events an endpoint may subscribe to; ``*`` subscribes to all, present and future.
EventType = Literal[
    "memory.created",
    "memory.updated",
    "memory.invalidated",
    "memory.expired",
    "job.succeeded",
    "job.failed",
    "document.synced",
    "user.deleted",
    "user.erased",
    "agent.erased",
    "session.erased",
    "document.erased",
    "repository.erased",
    "agent.online",
    "agent.offline",
    "task.created",
    "task.claimed",
    "task.input_required",
    "task.completed",
    "task.failed",
    "task.canceled",
    "task.lease_expired",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
# Events also sent to endpoints subscribed to another type: a user's deletion or erasure, and an agent's or
# session's erasure, erase memories at once (one event, not one per memory), so whoever follows
# ``memory.invalidated`` learns of it too; and whoever follows ``user.deleted`` learns of a user erased with
# a receipt (the same erasure).
ALSO_SENT_TO: dict[str, tuple[str, ...]] = {
    "user.deleted": ("memory.invalidated",),
    "user.erased": ("user.deleted", "memory.invalidated"),
    "agent.erased": ("memory.invalidated",),
    "session.erased": ("memory.invalidated",),
    "memory.expired": ("memory.invalidated",),  # retention deleted them: one event per batch, not per memory
}
TEST_EVENT = "webhook.test"  # sent by the test operation only; no subscription needed
Subscription = Literal[EventType, "*"]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _check_url(value: str) -> str:
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("a URL may not contain spaces or control characters")
    try:
        value.encode("ascii")
        parts = urlsplit(value)
        port = parts.port  # raises on a port out of range
        httpx.URL(value)  # what will send it must read it too
    except (ValueError, UnicodeEncodeError, httpx.InvalidURL) as exc:
        raise ValueError(f"not a valid URL ({exc}); non-ASCII hosts and paths must be percent-encoded") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise ValueError("a webhook URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("a webhook URL must name a host")
    if parts.fragment:
        raise ValueError("a webhook URL may not have a #fragment")
    del port
    return value


WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.MAX_WEBHOOK_URL_CHARS),
    AfterValidator(_check_url),
    Field(description="Where events are POSTed: an http:// or https:// URL (redirects are not followed)."),
]
Subscriptions = Annotated[
    list[Subscription],
    Field(
        min_length=1,
        max_length=len(EVENT_TYPES) + 1,
        description="Event types to receive; `*` for every type, including types added later.",
    ),
    AfterValidator(_dedupe),
]


_EVERYTHING: list[Subscription] = ["*"]


class WebhookCreate(StrictModel):
    url: WebhookUrl
    event_types: Subscriptions = Field(default_factory=lambda: list(_EVERYTHING))
    description: Description | None = None
    enabled: bool = True


class WebhookUpdate(StrictModel):
    url: WebhookUrl | None = None
    event_types: Subscriptions | None = None
    description: Description | None = None
    enabled: bool | None = None


class Webhook(PublicModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, when the previous secret stops signing deliveries."
    )
    created_at: datetime
    updated_at: datetime


class WebhookFilters(PageQuery):
    """``GET /webhooks``, newest first: paging only."""


class WebhookCreated(Webhook):
    secret: str = Field(
        description="The signing secret (`whsec_…`): shown only here and by rotate-secret. Verify with it."
    )


class WebhookAttempt(PublicModel):
    at: datetime
    status_code: int | None = Field(description="The endpoint's HTTP status; null when no response came.")
    error: str | None = Field(description="Why the attempt failed: a network error, a timeout, a non-2xx status.")
    duration_ms: int
    response: str | None = Field(
        description="The start of the response body, only if the operator keeps it "
        "(`ENGRAM_WEBHOOK_RESPONSE_CHARS`, at most 500 characters); null by default."
    )


class WebhookDelivery(PublicModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="Sent as `webhook-id`: the same on every attempt and replay.")
    event_type: str
    payload: dict[str, Any] = Field(
        description="The JSON body sent: `{type, timestamp, data}`. Once what it is about is erased, `data` "
        "holds ids only and `redacted: true` (as do its pending attempts and replays)."
    )
    status: DeliveryStatus
    attempts: int = Field(description="Attempts made so far, replays included.")
    replays: int
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When the next attempt is due, while pending.")
    delivered_at: datetime | None
    attempt_log: list[WebhookAttempt] = Field(description="Every attempt, oldest first (the last 50).")
    created_at: datetime
    updated_at: datetime


class WebhookDeliveryFilters(PageQuery):
    """An endpoint's delivery log, newest first."""

    status: DeliveryStatus | None = None
    event_type: str | None = Field(default=None, max_length=100, description="Only deliveries of this event type.")

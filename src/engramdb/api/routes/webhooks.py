"""Webhook endpoints and their delivery log (admin keys only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from engramdb.api.deps import CallerDep, DbDep, RuntimeDep
from engramdb.schemas.common import Page
from engramdb.schemas.webhooks import (
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
    WebhookDeliveryFilters,
    WebhookFilters,
    WebhookUpdate,
)
from engramdb.services.webhooks import endpoints as webhooks

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    operation_id="create_webhook",
    summary="Register a webhook endpoint (its signing secret is in the response, once)",
)
async def create_webhook(body: WebhookCreate, rt: RuntimeDep, caller: CallerDep) -> WebhookCreated:
    return await webhooks.create(rt, caller, body)


@router.get("", response_model=Page[Webhook], operation_id="list_webhooks", summary="List webhook endpoints")
async def list_webhooks(filters: Annotated[WebhookFilters, Query()], db: DbDep, caller: CallerDep) -> Page[Webhook]:
    return await webhooks.list_webhooks(db, caller, filters)


@router.get("/{webhook_id}", response_model=Webhook, operation_id="get_webhook", summary="Get a webhook endpoint")
async def get_webhook(webhook_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Webhook:
    return await webhooks.get(db, caller, webhook_id)


@router.patch(
    "/{webhook_id}",
    response_model=Webhook,
    operation_id="update_webhook",
    summary="Change a webhook endpoint's URL, event types, description or enabled state",
)
async def update_webhook(webhook_id: uuid.UUID, body: WebhookUpdate, rt: RuntimeDep, caller: CallerDep) -> Webhook:
    return await webhooks.update_webhook(rt, caller, webhook_id, body)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    operation_id="delete_webhook",
    summary="Delete a webhook endpoint and its delivery log",
)
async def delete_webhook(webhook_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Response:
    await webhooks.delete_webhook(db, caller, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookCreated,
    operation_id="rotate_webhook_secret",
    summary="Replace the signing secret (the old one also signs for 24 hours)",
)
async def rotate_webhook_secret(webhook_id: uuid.UUID, db: DbDep, caller: CallerDep) -> WebhookCreated:
    return await webhooks.rotate_secret(db, caller, webhook_id)


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    response_model=WebhookDelivery,
    operation_id="test_webhook",
    summary="Queue a webhook.test event to this endpoint",
)
async def test_webhook(webhook_id: uuid.UUID, db: DbDep, caller: CallerDep) -> WebhookDelivery:
    return await webhooks.send_test(db, caller, webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[WebhookDelivery],
    operation_id="list_webhook_deliveries",
    summary="The endpoint's delivery log, newest first",
)
async def list_webhook_deliveries(
    webhook_id: uuid.UUID, filters: Annotated[WebhookDeliveryFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[WebhookDelivery]:
    return await webhooks.list_deliveries(db, caller, webhook_id, filters)


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    response_model=WebhookDelivery,
    operation_id="get_webhook_delivery",
    summary="One delivery, with every attempt",
)
async def get_webhook_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, db: DbDep, caller: CallerDep
) -> WebhookDelivery:
    return await webhooks.get_delivery(db, caller, webhook_id, delivery_id)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=WebhookDelivery,
    operation_id="replay_webhook_delivery",
    summary="Send a finished delivery once more (same event id and payload)",
)
async def replay_webhook_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, db: DbDep, caller: CallerDep
) -> WebhookDelivery:
    return await webhooks.replay(db, caller, webhook_id, delivery_id)

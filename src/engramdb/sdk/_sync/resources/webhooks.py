# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.
"""Webhook endpoints and their deliveries: ``client.webhooks``."""

from __future__ import annotations

from engramdb.schemas.webhooks import (
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
    WebhookDeliveryFilters,
    WebhookFilters,
    WebhookUpdate,
)
from engramdb.sdk import _common as c
from engramdb.sdk._common import Id
from engramdb.sdk._sync.pager import Pager
from engramdb.sdk._sync.resources.base import Fields, Resource


class Webhooks(Resource):
    """Signed event deliveries to your endpoints (admin keys only); see docs/api.md, Webhooks."""

    @c.operation("create_webhook")
    def create(self, webhook: WebhookCreate | None = None, /, **fields: Fields) -> WebhookCreated:
        """Subscribe a URL to event types; the answer holds the signing secret, shown this once."""
        sent = c.body(WebhookCreate, webhook, fields)
        return self._client.call(WebhookCreated, "POST", "/v1/webhooks", json=sent)

    @c.operation("list_webhooks")
    def list(self, filters: WebhookFilters | None = None, /, **fields: Fields) -> Pager[Webhook]:
        """Newest first. ``fields``: cursor, limit."""
        return Pager(self._client, "/v1/webhooks", Webhook, c.filters(WebhookFilters, filters, fields))

    @c.operation("get_webhook")
    def get(self, webhook_id: Id) -> Webhook:
        return self._client.call(Webhook, "GET", f"/v1/webhooks/{c.path_id(webhook_id)}")

    @c.operation("update_webhook")
    def update(self, webhook_id: Id, change: WebhookUpdate | None = None, /, **fields: Fields) -> Webhook:
        sent = c.body(WebhookUpdate, change, fields)
        return self._client.call(Webhook, "PATCH", f"/v1/webhooks/{c.path_id(webhook_id)}", json=sent)

    @c.operation("delete_webhook")
    def delete(self, webhook_id: Id) -> None:
        self._client.request("DELETE", f"/v1/webhooks/{c.path_id(webhook_id)}")

    @c.operation("rotate_webhook_secret")
    def rotate_secret(self, webhook_id: Id) -> WebhookCreated:
        path = f"/v1/webhooks/{c.path_id(webhook_id)}/rotate-secret"
        return self._client.call(WebhookCreated, "POST", path)

    @c.operation("test_webhook")
    def test(self, webhook_id: Id) -> WebhookDelivery:
        """Queue a ``webhook.test`` event to the endpoint."""
        return self._client.call(WebhookDelivery, "POST", f"/v1/webhooks/{c.path_id(webhook_id)}/test")

    @c.operation("list_webhook_deliveries")
    def deliveries(
        self, webhook_id: Id, filters: WebhookDeliveryFilters | None = None, /, **fields: Fields
    ) -> Pager[WebhookDelivery]:
        """The delivery log, newest first: every attempt's status code, error and time. ``fields``:
        status, event_type, cursor, limit."""
        params = c.filters(WebhookDeliveryFilters, filters, fields)
        path = f"/v1/webhooks/{c.path_id(webhook_id)}/deliveries"
        return Pager(self._client, path, WebhookDelivery, params)

    @c.operation("get_webhook_delivery")
    def get_delivery(self, webhook_id: Id, delivery_id: Id) -> WebhookDelivery:
        path = f"/v1/webhooks/{c.path_id(webhook_id)}/deliveries/{c.path_id(delivery_id)}"
        return self._client.call(WebhookDelivery, "GET", path)

    @c.operation("replay_webhook_delivery")
    def replay(self, webhook_id: Id, delivery_id: Id) -> WebhookDelivery:
        """Send a delivery again (same event id, so receivers can de-duplicate)."""
        path = f"/v1/webhooks/{c.path_id(webhook_id)}/deliveries/{c.path_id(delivery_id)}/replay"
        return self._client.call(WebhookDelivery, "POST", path)

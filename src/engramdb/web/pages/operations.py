"""Running the service: jobs (failures and retry), the audit log with its filters, webhooks with their
deliveries and replay, and API keys (created and shown once, revoked at once). All but jobs need admin,
as the API's operations do; the services refuse otherwise and the page says why."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from engramdb.schemas.audit import AuditFilters
from engramdb.schemas.directory import ApiKeyCreate, ApiKeyFilters
from engramdb.schemas.jobs import JobFilters
from engramdb.schemas.webhooks import WebhookDeliveryFilters, WebhookFilters
from engramdb.services.core import audit, jobs
from engramdb.services.tenancy import keys
from engramdb.services.webhooks import endpoints as webhooks
from engramdb.web.view import Pages, View

pages = Pages()


@pages.get("/jobs")
async def job_list(view: View) -> Response:
    filters = view.query(JobFilters)
    page = await jobs.list_jobs(view.rt.db, view.caller, filters)
    return view.render("jobs.html", page=page, filters=filters, next_href=view.next_href(page.next_cursor))


@pages.post("/jobs/{job_id:uuid}/retry")
async def retry_job(view: View) -> Response:
    await jobs.retry(view.rt.db, view.caller, view.path_id("job_id"), max_attempts=view.rt.settings.job_max_attempts)
    return view.redirect("/ui/jobs", notice="retried")


@pages.get("/audit")
async def audit_log(view: View) -> Response:
    filters = view.query(AuditFilters)
    page = await audit.list_entries(view.rt.db, view.caller, filters)
    return view.render("audit.html", page=page, filters=filters, next_href=view.next_href(page.next_cursor))


@pages.get("/webhooks")
async def webhook_list(view: View) -> Response:
    page = await webhooks.list_webhooks(view.rt.db, view.caller, view.query(WebhookFilters))
    return view.render("webhooks.html", page=page, next_href=view.next_href(page.next_cursor))


@pages.get("/webhooks/{webhook_id:uuid}")
async def webhook(view: View) -> Response:
    webhook_id = view.path_id("webhook_id")
    db, caller = view.rt.db, view.caller
    endpoint = await webhooks.get(db, caller, webhook_id)
    filters = view.query(WebhookDeliveryFilters)
    deliveries = await webhooks.list_deliveries(db, caller, webhook_id, filters)
    return view.render(
        "webhook.html",
        endpoint=endpoint,
        deliveries=deliveries,
        filters=filters,
        next_href=view.next_href(deliveries.next_cursor),
    )


@pages.post("/webhooks/{webhook_id:uuid}/deliveries/{delivery_id:uuid}/replay")
async def replay_delivery(view: View) -> Response:
    webhook_id = view.path_id("webhook_id")
    await webhooks.replay(view.rt.db, view.caller, webhook_id, view.path_id("delivery_id"))
    return view.redirect(f"/ui/webhooks/{webhook_id}", notice="replayed")


@pages.get("/keys")
async def key_list(view: View) -> Response:
    return await _keys(view, created=None)


@pages.post("/keys")
async def create_key(view: View) -> Response:
    """The new key is shown on the page that answers this form, once: it is not kept anywhere to show again."""
    assert view.form is not None
    body: dict[str, Any] = {
        "name": view.field("name"),
        "scopes": [s for s in view.form.getlist("scopes") if isinstance(s, str)] or ["read"],
        "external_user_id": view.field("external_user_id") or None,
        "expires_at": view.field("expires_at") or None,
    }
    created = await keys.create_key(view.rt.db, view.caller, ApiKeyCreate.model_validate(body))
    return await _keys(view, created=created.api_key, status=201)


@pages.post("/keys/{key_id:uuid}/revoke")
async def revoke_key(view: View) -> Response:
    await keys.revoke_key(view.rt.db, view.caller, view.path_id("key_id"))
    return view.redirect("/ui/keys", notice="revoked")


async def _keys(view: View, *, created: str | None, status: int = 200) -> Response:
    filters = view.query(ApiKeyFilters) if view.request.method == "GET" else ApiKeyFilters()
    page = await keys.list_keys(view.rt.db, view.caller, filters)
    return view.render(
        "keys.html",
        status=status,
        page=page,
        filters=filters,
        created=created,
        next_href=view.next_href(page.next_cursor),
    )

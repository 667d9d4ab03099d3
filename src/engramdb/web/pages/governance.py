"""Governance (admin, as the API's operations are): access grants (made and revoked), retention policies
(made, tried in a dry run, deleted) with the reports of recent runs, and legal holds (placed and released).

Forms are read into the API's own models, so a grant without one grantee or a policy its target cannot
carry out is refused with the same message, on an error page naming the field."""

from __future__ import annotations

from typing import Any, get_args

from starlette.responses import Response

from engramdb.schemas.memories import MemoryState, MemoryType
from engramdb.schemas.retention import (
    LegalHoldCreate,
    LegalHoldFilters,
    RetentionPolicyCreate,
    RetentionPolicyFilters,
    RetentionRunFilters,
    RetentionTarget,
)
from engramdb.schemas.sharing import GrantCreate, GrantFilters, GrantResource
from engramdb.services.governance import holds, retention, sharing
from engramdb.web.view import Pages, View, split_list

pages = Pages()
RUNS = 10  # recent retention runs shown under the policies
GRANTEES = ("team", "user", "agent", "key")
# The forms' choices, from the API's own types.
CHOICES = {
    "resources": get_args(GrantResource),
    "targets": get_args(RetentionTarget),
    "memory_types": get_args(MemoryType),
    "memory_states": get_args(MemoryState),
}


@pages.get("/governance")
async def governance(view: View) -> Response:
    view.caller.require("admin")
    return view.redirect("/ui/governance/grants")


# --- access grants -----------------------------------------------------------------------------------------


@pages.get("/governance/grants")
async def grant_list(view: View) -> Response:
    filters = view.query(GrantFilters)
    page = await sharing.list_grants(view.rt.db, view.caller, filters)
    return view.render(
        "grants.html",
        page=page,
        filters=filters,
        grantees=GRANTEES,
        choices=CHOICES,
        next_href=view.next_href(page.next_cursor),
    )


@pages.post("/governance/grants")
async def create_grant(view: View) -> Response:
    grantee = view.field("grantee")
    body: dict[str, Any] = {
        "permission": view.field("permission"),
        "resource": view.field("resource"),
        "tags": split_list(view.field("tags")),
        "categories": split_list(view.field("categories")),
    }
    if grantee in GRANTEES:  # anything else: no grantee, which the model refuses by name
        body[f"grantee_{grantee}_id"] = view.field("grantee_id").strip() or None
    for name in ("owner_user_id", "memory_type", "description", "expires_at"):
        if value := view.field(name).strip():
            body[name] = value
    await sharing.create(view.rt.db, view.caller, GrantCreate.model_validate(body))
    return view.redirect("/ui/governance/grants", notice="granted")


@pages.post("/governance/grants/{grant_id:uuid}/revoke")
async def revoke_grant(view: View) -> Response:
    await sharing.revoke(view.rt.db, view.caller, view.path_id("grant_id"))
    return view.redirect("/ui/governance/grants", notice="grant_revoked")


# --- retention policies ------------------------------------------------------------------------------------


@pages.get("/governance/retention")
async def retention_list(view: View) -> Response:
    db, caller = view.rt.db, view.caller
    filters = view.query(RetentionPolicyFilters)
    page = await retention.list_policies(db, caller, filters)
    runs = await retention.list_runs(db, caller, RetentionRunFilters(limit=RUNS))
    names = {p.id: p.name for p in page.data}
    return view.render(
        "retention.html",
        page=page,
        filters=filters,
        runs=runs.data,
        names=names,
        choices=CHOICES,
        next_href=view.next_href(page.next_cursor),
    )


@pages.post("/governance/retention")
async def create_policy(view: View) -> Response:
    body: dict[str, Any] = {"enabled": view.field("enabled") == "true"}
    for name in ("name", "target", "action", "basis", "after_days", "keep_latest", "user_id", "memory_type", "state"):
        if value := view.field(name).strip():
            body[name] = value
    await retention.create(view.rt.db, view.caller, RetentionPolicyCreate.model_validate(body))
    return view.redirect("/ui/governance/retention", notice="policy_created")


@pages.post("/governance/retention/{policy_id:uuid}/dry-run")
async def dry_run_policy(view: View) -> Response:
    """Count what the policy would archive or delete now; the report heads the runs below."""
    await retention.run(view.rt, view.caller, view.path_id("policy_id"), dry_run=True)
    return view.redirect("/ui/governance/retention", notice="dry_run")


@pages.post("/governance/retention/{policy_id:uuid}/delete")
async def delete_policy(view: View) -> Response:
    await retention.delete_policy(view.rt.db, view.caller, view.path_id("policy_id"))
    return view.redirect("/ui/governance/retention", notice="policy_deleted")


# --- legal holds -------------------------------------------------------------------------------------------


@pages.get("/governance/holds")
async def hold_list(view: View) -> Response:
    filters = view.query(LegalHoldFilters)
    page = await holds.list_holds(view.rt.db, view.caller, filters)
    return view.render("holds.html", page=page, filters=filters, next_href=view.next_href(page.next_cursor))


@pages.post("/governance/holds")
async def create_hold(view: View) -> Response:
    body = {"user_id": view.field("user_id").strip() or None, "reason": view.field("reason")}
    await holds.create(view.rt.db, view.caller, LegalHoldCreate.model_validate(body))
    return view.redirect("/ui/governance/holds", notice="hold_placed")


@pages.post("/governance/holds/{hold_id:uuid}/release")
async def release_hold(view: View) -> Response:
    await holds.release(view.rt.db, view.caller, view.path_id("hold_id"))
    return view.redirect("/ui/governance/holds", notice="hold_released")

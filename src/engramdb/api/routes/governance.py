"""Export and import of an organization or one user; erasure of a subject with a receipt; retention policies,
their runs, and legal holds (admin); access grants (admin)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from engramdb import limits
from engramdb.api.deps import CallerDep, DbDep, RuntimeDep
from engramdb.errors import UnsupportedContent
from engramdb.schemas.common import Page
from engramdb.schemas.erasure import ErasureReceipt
from engramdb.schemas.export import ImportResult
from engramdb.schemas.retention import (
    LegalHold,
    LegalHoldCreate,
    LegalHoldFilters,
    LegalHoldUpdate,
    RetentionPolicy,
    RetentionPolicyCreate,
    RetentionPolicyFilters,
    RetentionPolicyUpdate,
    RetentionRun,
    RetentionRunFilters,
    RetentionRunOptions,
)
from engramdb.schemas.sharing import Grant, GrantCreate, GrantFilters, GrantUpdate
from engramdb.services.governance import erase, export, holds, import_, retention, sharing

router = APIRouter(tags=["export"])


_FILE = {"schema": {"type": "string", "format": "binary"}}


_IMPORT_TYPES = (
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/octet-stream",
    "text/plain",
)


_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "An export file: its header line, then one record per line.",
        "content": {"application/x-ndjson": _FILE, "application/octet-stream": _FILE},
    }
}


@router.get(
    "/export",
    operation_id="export_data",
    summary="Export the organization's data, or one user's, as JSON Lines",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The export file: a header line, then one record per line",
            "content": {export.MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    },
)
async def export_data(
    rt: RuntimeDep,
    caller: CallerDep,
    user_id: Annotated[uuid.UUID | None, Query(description="Export this user's data only.")] = None,
    external_user_id: Annotated[
        str | None,
        Query(min_length=1, max_length=limits.MAX_EXTERNAL_ID_CHARS, description="The user by your own id."),
    ] = None,
    include_embeddings: Annotated[
        bool, Query(description="Write vectors, so an import need not embed again (false: a smaller file).")
    ] = True,
) -> StreamingResponse:
    plan = await export.prepare(
        rt, caller, user_id=user_id, external_user_id=external_user_id, include_embeddings=include_embeddings
    )
    return StreamingResponse(
        export.stream(rt.db, plan),
        media_type=export.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{plan.file_name()}"'},
    )


@router.post(
    "/import",
    response_model=ImportResult,
    operation_id="import_data",
    summary="Import an export file into this organization (admin; idempotent, all or nothing)",
    openapi_extra=_IMPORT_BODY,
)
async def import_data(request: Request, rt: RuntimeDep, caller: CallerDep) -> ImportResult:
    caller.require("admin")  # before reading a byte of the body
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared and declared not in _IMPORT_TYPES:
        raise UnsupportedContent(f"send the export file as application/x-ndjson, not {declared[:100]}")
    return await import_.run(rt, caller, _body(request))


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


_ERASE = (
    "Admin. Removes the {kind} and everything it holds from every table, with what was derived from it "
    "alone (see docs/api.md, Erasure), in one transaction; the audit log keeps `{kind}.erased` under a "
    "pseudonym. The answer is the erasure's receipt: keep it. A retry with the same Idempotency-Key gets "
    "the same receipt; without one, a second erasure is a 404."
)


@router.post(
    "/users/{user_id}/erase",
    response_model=ErasureReceipt,
    tags=["erasure"],
    operation_id="erase_user",
    summary="Erase a user and all they hold, with a receipt",
    description=_ERASE.format(kind="user"),
)
async def erase_user(user_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> ErasureReceipt:
    return await erase.subject(rt, caller, "user", user_id)


@router.post(
    "/agents/{agent_id}/erase",
    response_model=ErasureReceipt,
    tags=["erasure"],
    operation_id="erase_agent",
    summary="Erase an agent and all it holds, with a receipt",
    description=_ERASE.format(kind="agent"),
)
async def erase_agent(agent_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> ErasureReceipt:
    return await erase.subject(rt, caller, "agent", agent_id)


@router.post(
    "/sessions/{session_id}/erase",
    response_model=ErasureReceipt,
    tags=["erasure"],
    operation_id="erase_session",
    summary="Erase a session, its messages and what was drawn from it, with a receipt",
    description=_ERASE.format(kind="session"),
)
async def erase_session(session_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> ErasureReceipt:
    return await erase.subject(rt, caller, "session", session_id)


@router.post(
    "/documents/{document_id}/erase",
    response_model=ErasureReceipt,
    tags=["erasure"],
    operation_id="erase_document",
    summary="Erase a document and its ingests, with a receipt",
    description=_ERASE.format(kind="document"),
)
async def erase_document(document_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> ErasureReceipt:
    return await erase.subject(rt, caller, "document", document_id)


@router.post(
    "/repositories/{repository_id}/erase",
    response_model=ErasureReceipt,
    tags=["erasure"],
    operation_id="erase_repository",
    summary="Erase a repository and its documents, with a receipt",
    description=_ERASE.format(kind="repository"),
)
async def erase_repository(repository_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> ErasureReceipt:
    return await erase.subject(rt, caller, "repository", repository_id)


# --- retention (admin) ---------------------------------------------------------------------------------

retention_router = APIRouter(prefix="/retention", tags=["retention"])


@retention_router.post(
    "/policies",
    status_code=201,
    response_model=RetentionPolicy,
    operation_id="create_retention_policy",
    summary="Create a retention policy: archive or delete rows after N days",
)
async def create_retention_policy(body: RetentionPolicyCreate, db: DbDep, caller: CallerDep) -> RetentionPolicy:
    return await retention.create(db, caller, body)


@retention_router.get(
    "/policies",
    response_model=Page[RetentionPolicy],
    operation_id="list_retention_policies",
    summary="List retention policies",
)
async def list_retention_policies(
    filters: Annotated[RetentionPolicyFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[RetentionPolicy]:
    return await retention.list_policies(db, caller, filters)


@retention_router.get(
    "/policies/{policy_id}",
    response_model=RetentionPolicy,
    operation_id="get_retention_policy",
    summary="Get a retention policy",
)
async def get_retention_policy(policy_id: uuid.UUID, db: DbDep, caller: CallerDep) -> RetentionPolicy:
    return await retention.get(db, caller, policy_id)


@retention_router.patch(
    "/policies/{policy_id}",
    response_model=RetentionPolicy,
    operation_id="update_retention_policy",
    summary="Change a retention policy (its target stays)",
)
async def update_retention_policy(
    policy_id: uuid.UUID, body: RetentionPolicyUpdate, db: DbDep, caller: CallerDep
) -> RetentionPolicy:
    return await retention.update_policy(db, caller, policy_id, body)


@retention_router.delete(
    "/policies/{policy_id}",
    status_code=204,
    operation_id="delete_retention_policy",
    summary="Delete a retention policy (the reports of its runs stay)",
)
async def delete_retention_policy(policy_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Response:
    await retention.delete_policy(db, caller, policy_id)
    return Response(status_code=204)


@retention_router.post(
    "/policies/{policy_id}/run",
    response_model=RetentionRun,
    operation_id="run_retention_policy",
    summary="Run one policy now (dry_run=true: count what it would do), and get its report",
)
async def run_retention_policy(
    policy_id: uuid.UUID, options: Annotated[RetentionRunOptions, Query()], rt: RuntimeDep, caller: CallerDep
) -> RetentionRun:
    return await retention.run(rt, caller, policy_id, dry_run=options.dry_run)


@retention_router.post(
    "/run",
    response_model=RetentionRun,
    operation_id="run_retention",
    summary="Delete expired rows and run every enabled policy now (dry_run=true: count only)",
)
async def run_retention(
    options: Annotated[RetentionRunOptions, Query()], rt: RuntimeDep, caller: CallerDep
) -> RetentionRun:
    return await retention.run_all(rt, caller, dry_run=options.dry_run)


@retention_router.get(
    "/runs", response_model=Page[RetentionRun], operation_id="list_retention_runs", summary="Reports of retention runs"
)
async def list_retention_runs(
    filters: Annotated[RetentionRunFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[RetentionRun]:
    return await retention.list_runs(db, caller, filters)


@retention_router.get(
    "/runs/{run_id}", response_model=RetentionRun, operation_id="get_retention_run", summary="One run's report"
)
async def get_retention_run(run_id: uuid.UUID, db: DbDep, caller: CallerDep) -> RetentionRun:
    return await retention.get_run(db, caller, run_id)


holds_router = APIRouter(prefix="/legal-holds", tags=["retention"])


@holds_router.post(
    "",
    status_code=201,
    response_model=LegalHold,
    operation_id="create_legal_hold",
    summary="Place a legal hold on a user (or the organization): retention deletes nothing of it",
)
async def create_legal_hold(body: LegalHoldCreate, db: DbDep, caller: CallerDep) -> LegalHold:
    return await holds.create(db, caller, body)


@holds_router.get("", response_model=Page[LegalHold], operation_id="list_legal_holds", summary="List legal holds")
async def list_legal_holds(
    filters: Annotated[LegalHoldFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[LegalHold]:
    return await holds.list_holds(db, caller, filters)


@holds_router.get("/{hold_id}", response_model=LegalHold, operation_id="get_legal_hold", summary="Get a legal hold")
async def get_legal_hold(hold_id: uuid.UUID, db: DbDep, caller: CallerDep) -> LegalHold:
    return await holds.get(db, caller, hold_id)


@holds_router.patch(
    "/{hold_id}", response_model=LegalHold, operation_id="update_legal_hold", summary="Change a legal hold's reason"
)
async def update_legal_hold(hold_id: uuid.UUID, body: LegalHoldUpdate, db: DbDep, caller: CallerDep) -> LegalHold:
    return await holds.update_hold(db, caller, hold_id, body)


@holds_router.post(
    "/{hold_id}/release",
    response_model=LegalHold,
    operation_id="release_legal_hold",
    summary="Release a legal hold (it stays on record)",
)
async def release_legal_hold(hold_id: uuid.UUID, db: DbDep, caller: CallerDep) -> LegalHold:
    return await holds.release(db, caller, hold_id)


@holds_router.delete(
    "/{hold_id}",
    status_code=204,
    operation_id="delete_legal_hold",
    summary="Release a legal hold (it stays on record, as released)",
)
async def delete_legal_hold(hold_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Response:
    await holds.release(db, caller, hold_id)
    return Response(status_code=204)


grants_router = APIRouter(prefix="/grants", tags=["grants"])


@grants_router.post(
    "",
    status_code=201,
    response_model=Grant,
    operation_id="create_grant",
    summary="Grant a team, user, agent or key read or write on a slice of the organization's data (admin)",
)
async def create_grant(body: GrantCreate, db: DbDep, caller: CallerDep) -> Grant:
    return await sharing.create(db, caller, body)


@grants_router.get("", response_model=Page[Grant], operation_id="list_grants", summary="List access grants")
async def list_grants(filters: Annotated[GrantFilters, Query()], db: DbDep, caller: CallerDep) -> Page[Grant]:
    return await sharing.list_grants(db, caller, filters)


@grants_router.get("/{grant_id}", response_model=Grant, operation_id="get_grant", summary="Get an access grant")
async def get_grant(grant_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Grant:
    return await sharing.get(db, caller, grant_id)


@grants_router.patch(
    "/{grant_id}",
    response_model=Grant,
    operation_id="update_grant",
    summary="Change when an access grant expires, or its description",
)
async def update_grant(grant_id: uuid.UUID, body: GrantUpdate, db: DbDep, caller: CallerDep) -> Grant:
    return await sharing.update_grant(db, caller, grant_id, body)


@grants_router.delete(
    "/{grant_id}",
    response_model=Grant,
    operation_id="revoke_grant",
    summary="Revoke an access grant at once (the record stays, for the audit trail)",
)
async def revoke_grant(grant_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Grant:
    return await sharing.revoke(db, caller, grant_id)

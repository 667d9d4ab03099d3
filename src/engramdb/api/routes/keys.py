from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from engramdb import limits
from engramdb.api.deps import CallerDep, CursorQ, DbDep, LimitQ
from engramdb.schemas.common import Page
from engramdb.schemas.directory import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyUpdate
from engramdb.services.tenancy import keys

router = APIRouter(prefix="/keys", tags=["keys"])


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    operation_id="create_api_key",
    summary="Create an API key (the secret is in the response, once)",
)
async def create_api_key(body: ApiKeyCreate, db: DbDep, caller: CallerDep) -> ApiKeyCreated:
    return await keys.create_key(db, caller, body)


@router.get("", response_model=Page[ApiKey], operation_id="list_api_keys", summary="List API keys")
async def list_api_keys(
    db: DbDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    include_revoked: bool = Query(False, description="Also list revoked keys."),
) -> Page[ApiKey]:
    return await keys.list_keys(db, caller, include_revoked=include_revoked, cursor=cursor, limit=limit)


@router.get("/{key_id}", response_model=ApiKey, operation_id="get_api_key", summary="Get an API key")
async def get_api_key(key_id: uuid.UUID, db: DbDep, caller: CallerDep) -> ApiKey:
    return await keys.get_key(db, caller, key_id)


@router.patch("/{key_id}", response_model=ApiKey, operation_id="update_api_key", summary="Rename an API key")
async def update_api_key(key_id: uuid.UUID, body: ApiKeyUpdate, db: DbDep, caller: CallerDep) -> ApiKey:
    return await keys.update_key(db, caller, key_id, body)


@router.post(
    "/{key_id}/revoke", response_model=ApiKey, operation_id="revoke_api_key", summary="Revoke an API key at once"
)
async def revoke_api_key(key_id: uuid.UUID, db: DbDep, caller: CallerDep) -> ApiKey:
    return await keys.revoke_key(db, caller, key_id)


@router.delete(
    "/{key_id}",
    response_model=ApiKey,
    operation_id="delete_api_key",
    summary="Revoke an API key (the record stays for the audit trail)",
)
async def delete_api_key(key_id: uuid.UUID, db: DbDep, caller: CallerDep) -> ApiKey:
    return await keys.revoke_key(db, caller, key_id)

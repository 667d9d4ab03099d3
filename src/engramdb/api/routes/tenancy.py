"""Teams, users, agents and apps (the org's directory), and API keys.

No ``from __future__ import annotations`` here: the CRUD routes are built in a function, and FastAPI must
see their parameter types as objects, not as strings it cannot resolve.
"""

import uuid
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from engramdb import limits
from engramdb.api.deps import CallerDep, CursorQ, DbDep, LimitQ
from engramdb.schemas.common import Page
from engramdb.schemas.directory import (
    AgentCreate,
    AgentUpdate,
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyUpdate,
    AppCreate,
    AppUpdate,
    TeamCreate,
    TeamUpdate,
    User,
    UserCreate,
    UserUpdate,
)
from engramdb.services.governance import erase
from engramdb.services.tenancy import directory, keys
from engramdb.services.tenancy.directory import AGENTS, APPS, TEAMS, USERS, Resource


def _crud_router(
    res: Resource[Any], plural: str, create_model: type[BaseModel], update_model: type[BaseModel]
) -> APIRouter:
    router = APIRouter(prefix=f"/{plural}", tags=[plural])
    public = res.public
    kind = res.kind

    async def create_item(body: create_model, db: DbDep, caller: CallerDep) -> Any:  # type: ignore[valid-type]
        return await directory.create(db, caller, res, body)

    async def list_items(
        db: DbDep, caller: CallerDep, cursor: CursorQ = None, limit: LimitQ = limits.DEFAULT_PAGE_SIZE
    ) -> Any:
        return await directory.list_items(db, caller, res, cursor=cursor, limit=limit)

    async def get_item(item_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Any:
        return await directory.get(db, caller, res, item_id)

    async def update_item(item_id: uuid.UUID, body: update_model, db: DbDep, caller: CallerDep) -> Any:  # type: ignore[valid-type]
        return await directory.update_item(db, caller, res, item_id, body)

    async def delete_item(item_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Response:
        await erase.directory_item(db, caller, res, item_id)
        return Response(status_code=204)

    router.add_api_route(
        "",
        create_item,
        methods=["POST"],
        status_code=201,
        response_model=public,
        operation_id=f"create_{kind}",
        summary=f"Create a {kind}",
    )
    router.add_api_route(
        "",
        list_items,
        methods=["GET"],
        response_model=Page[public],  # type: ignore[valid-type]
        operation_id=f"list_{plural}",
        summary=f"List {plural}",
    )
    router.add_api_route(
        "/{item_id}",
        get_item,
        methods=["GET"],
        response_model=public,
        operation_id=f"get_{kind}",
        summary=f"Get a {kind}",
    )
    router.add_api_route(
        "/{item_id}",
        update_item,
        methods=["PATCH"],
        response_model=public,
        operation_id=f"update_{kind}",
        summary=f"Update a {kind}",
    )
    router.add_api_route(
        "/{item_id}",
        delete_item,
        methods=["DELETE"],
        status_code=204,
        operation_id=f"delete_{kind}",
        summary=f"Delete a {kind}",
    )
    return router


teams = _crud_router(TEAMS, "teams", TeamCreate, TeamUpdate)


users = _crud_router(USERS, "users", UserCreate, UserUpdate)


agents = _crud_router(AGENTS, "agents", AgentCreate, AgentUpdate)


apps = _crud_router(APPS, "apps", AppCreate, AppUpdate)


@users.get(
    "/by-external-id/{external_id}",
    response_model=User,
    operation_id="get_user_by_external_id",
    summary="Get a user by your app's external id",
)
async def get_user_by_external_id(external_id: str, db: DbDep, caller: CallerDep) -> User:
    return await directory.get_user_by_external_id(db, caller, external_id)


keys_router = APIRouter(prefix="/keys", tags=["keys"])


@keys_router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    operation_id="create_api_key",
    summary="Create an API key (the secret is in the response, once)",
)
async def create_api_key(body: ApiKeyCreate, db: DbDep, caller: CallerDep) -> ApiKeyCreated:
    return await keys.create_key(db, caller, body)


@keys_router.get("", response_model=Page[ApiKey], operation_id="list_api_keys", summary="List API keys")
async def list_api_keys(
    db: DbDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    include_revoked: bool = Query(False, description="Also list revoked keys."),
) -> Page[ApiKey]:
    return await keys.list_keys(db, caller, include_revoked=include_revoked, cursor=cursor, limit=limit)


@keys_router.get("/{key_id}", response_model=ApiKey, operation_id="get_api_key", summary="Get an API key")
async def get_api_key(key_id: uuid.UUID, db: DbDep, caller: CallerDep) -> ApiKey:
    return await keys.get_key(db, caller, key_id)


@keys_router.patch("/{key_id}", response_model=ApiKey, operation_id="update_api_key", summary="Rename an API key")
async def update_api_key(key_id: uuid.UUID, body: ApiKeyUpdate, db: DbDep, caller: CallerDep) -> ApiKey:
    return await keys.update_key(db, caller, key_id, body)


@keys_router.post(
    "/{key_id}/revoke", response_model=ApiKey, operation_id="revoke_api_key", summary="Revoke an API key at once"
)
async def revoke_api_key(key_id: uuid.UUID, db: DbDep, caller: CallerDep) -> ApiKey:
    return await keys.revoke_key(db, caller, key_id)


@keys_router.delete(
    "/{key_id}",
    response_model=ApiKey,
    operation_id="delete_api_key",
    summary="Revoke an API key (the record stays for the audit trail)",
)
async def delete_api_key(key_id: uuid.UUID, db: DbDep, caller: CallerDep) -> ApiKey:
    return await keys.revoke_key(db, caller, key_id)

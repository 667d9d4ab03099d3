"""Teams, users, agents and apps (the org's directory), API keys, the organization's rate limits, and the
organization itself (its isolation level).

No ``from __future__ import annotations`` here: the CRUD routes are built in a function, and FastAPI must
see their parameter types as objects, not as strings it cannot resolve.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from engramdb.api.deps import CallerDep, DbDep, RuntimeDep
from engramdb.schemas.common import Page, PageQuery
from engramdb.schemas.directory import (
    AgentCreate,
    AgentFilters,
    AgentUpdate,
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyFilters,
    ApiKeyUpdate,
    AppCreate,
    AppFilters,
    AppUpdate,
    Organization,
    OrganizationUpdate,
    TeamCreate,
    TeamFilters,
    TeamUpdate,
    User,
    UserCreate,
    UserFilters,
    UserUpdate,
)
from engramdb.schemas.limits import Limits, LimitsUpdate
from engramdb.services.governance import erase
from engramdb.services.tenancy import directory, keys, organizations, quotas
from engramdb.services.tenancy.directory import AGENTS, APPS, TEAMS, USERS, Resource

_DELETE_USER = (
    "Erases the user and everything they hold, as `POST /v1/users/{user_id}/erase` does, audited as "
    "`user.deleted`; that operation answers with the erasure's receipt, this one with nothing."
)


def _crud_router(
    res: Resource[Any],
    plural: str,
    create_model: type[BaseModel],
    update_model: type[BaseModel],
    filters_model: type[PageQuery],
) -> APIRouter:
    router = APIRouter(prefix=f"/{plural}", tags=[plural])
    public = res.public
    kind = res.kind

    async def create_item(body: create_model, db: DbDep, caller: CallerDep) -> Any:  # type: ignore[valid-type]
        return await directory.create(db, caller, res, body)

    async def list_items(filters: Annotated[filters_model, Query()], db: DbDep, caller: CallerDep) -> Any:  # type: ignore[valid-type]
        return await directory.list_items(db, caller, res, filters)

    async def get_item(item_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Any:
        return await directory.get(db, caller, res, item_id)

    async def update_item(item_id: uuid.UUID, body: update_model, db: DbDep, caller: CallerDep) -> Any:  # type: ignore[valid-type]
        return await directory.update_item(db, caller, res, item_id, body)

    async def delete_item(item_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> Response:
        await erase.directory_item(rt, caller, res, item_id)
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
        description=_DELETE_USER if res is USERS else None,
    )
    return router


teams = _crud_router(TEAMS, "teams", TeamCreate, TeamUpdate, TeamFilters)


users = _crud_router(USERS, "users", UserCreate, UserUpdate, UserFilters)


agents = _crud_router(AGENTS, "agents", AgentCreate, AgentUpdate, AgentFilters)


apps = _crud_router(APPS, "apps", AppCreate, AppUpdate, AppFilters)


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
async def list_api_keys(filters: Annotated[ApiKeyFilters, Query()], db: DbDep, caller: CallerDep) -> Page[ApiKey]:
    return await keys.list_keys(db, caller, filters)


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


limits_router = APIRouter(prefix="/limits", tags=["limits"])


@limits_router.get(
    "", response_model=Limits, operation_id="get_limits", summary="The organization's rate limits (admin)"
)
async def get_limits(rt: RuntimeDep, caller: CallerDep) -> Limits:
    return await quotas.get(rt.db, caller, rt.settings)


@limits_router.put(
    "",
    response_model=Limits,
    operation_id="set_limits",
    summary="Set the organization's own rate limits, whole (admin; at most the server's defaults)",
)
async def set_limits(body: LimitsUpdate, rt: RuntimeDep, caller: CallerDep) -> Limits:
    return await quotas.replace(rt.db, caller, body, rt.settings)


organization_router = APIRouter(prefix="/organization", tags=["organization"])


@organization_router.get(
    "", response_model=Organization, operation_id="get_organization", summary="The caller's organization"
)
async def get_organization(db: DbDep, caller: CallerDep) -> Organization:
    return await organizations.get(db, caller)


@organization_router.patch(
    "",
    response_model=Organization,
    operation_id="update_organization",
    summary="Set the organization's isolation level (admin, unbound key): federated joins federated insights",
)
async def update_organization(body: OrganizationUpdate, db: DbDep, caller: CallerDep) -> Organization:
    return await organizations.update_organization(db, caller, body)

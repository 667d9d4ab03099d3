"""Dependencies shared by the routes, as ``Annotated`` aliases so route signatures stay short."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engramdb.config import Settings
from engramdb.errors import Unauthenticated
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database

_bearer = HTTPBearer(auto_error=False, description="An Engram API key: `Authorization: Bearer egm_…`")


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API key as 'Authorization: Bearer egm_…' (create one with `engramdb init`)")
    admitted: Caller | None = getattr(request.state, "caller", None)
    if admitted is not None:  # this request's key, authenticated once already (api.admission)
        return admitted
    settings = get_settings(request)
    return await keys.authenticate(
        get_db(request),
        credentials.credentials,
        request_id=getattr(request.state, "request_id", None),
        client_addr=request.client.host if request.client else None,
        touch_interval_s=settings.key_touch_interval_s,
    )


DbDep = Annotated[Database, Depends(get_db)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CallerDep = Annotated[Caller, Depends(get_caller)]

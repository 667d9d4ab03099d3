"""Export and import of an organization or one user."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from engramdb import limits
from engramdb.api.deps import CallerDep, RuntimeDep
from engramdb.errors import UnsupportedContent
from engramdb.schemas.export import ImportResult
from engramdb.services.governance import export, import_

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

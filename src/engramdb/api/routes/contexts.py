"""Offloaded contexts: offload (JSON text, raw bytes or a multipart upload), describe, restore, list, delete."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile

from engramdb import limits
from engramdb.api.deps import CallerDep, DbDep, RuntimeDep
from engramdb.errors import PayloadTooLarge, ValidationFailed
from engramdb.schemas.common import Page
from engramdb.schemas.contexts import (
    Context,
    ContextCreate,
    ContextFilters,
    ContextResult,
    ContextUploadForm,
    ContextUploadParams,
)
from engramdb.services.contexts import contexts
from engramdb.services.core import turns

router = APIRouter(prefix="/contexts", tags=["contexts"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}


def _no_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A form has no null (a client sending one would send the text "null"): a field is left out instead."""
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) != 1:
        return schema
    kept = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**branches[0], **kept}


# The form's fields: the JSON body's, but `metadata` is a JSON object as text and `tags` a repeated field.
_FORM_FIELDS = {
    **{k: _no_null(v) for k, v in ContextCreate.model_json_schema()["properties"].items() if k != "content"},
    "metadata": {"type": "string", "description": "A JSON object, as text."},
    "tags": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": limits.MAX_TAG_CHARS}},
}
_OFFLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "JSON (`content` is text), a multipart upload (the `file` part, with the fields as form "
        "fields), or the content itself as the raw body with its own `Content-Type` (the fields as query "
        "parameters). At most `MAX_CONTEXT_BYTES` (16 MiB) of content.",
        "content": {
            "application/json": {"schema": ContextCreate.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}, **_FORM_FIELDS},
                }
            },
            "application/octet-stream": _BINARY,
        },
    }
}
_JSON = "application/json"
_MULTIPART = "multipart/form-data"


async def _read(request: Request, limit: int, refuse: PayloadTooLarge) -> bytes:
    """The body, refused (413) as soon as it passes ``limit``: the middleware passes this path unread."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise refuse
    return bytes(body)


def _request_too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request is over the {limits.MAX_CONTEXT_REQUEST_BYTES:,}-byte limit of an offload "
        "(MAX_CONTEXT_REQUEST_BYTES); send large content as the raw body"
    )


async def _form(request: Request, body: bytes) -> tuple[ContextUploadForm, bytes, str | None, str | None]:
    """The upload's fields, its ``file`` part's bytes, type and name."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=64)
    try:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise ValidationFailed(
                "a multipart offload needs the content as its `file` part",
                errors=[{"location": "body/file", "message": "field required", "type": "missing"}],
            )
        fields: dict[str, Any] = {k: v for k, v in form.multi_items() if k not in ("file", "tags")}
        tags = form.getlist("tags")
        if tags:
            fields["tags"] = tags
        parsed = ContextUploadForm.model_validate(fields)
        return parsed, await part.read(), part.content_type, part.filename
    finally:
        await form.close()


@router.post(
    "",
    status_code=201,
    response_model=ContextResult,
    responses={200: {"model": ContextResult, "description": "The same content was already stored in this scope"}},
    operation_id="offload_context",
    summary="Offload a context: stored compressed, summarized, embedded (201; 200 when already stored)",
    openapi_extra=_OFFLOAD_BODY,
)
async def offload_context(
    request: Request,
    response: Response,
    rt: RuntimeDep,
    caller: CallerDep,
    params: Annotated[ContextUploadParams, Query()],
) -> ContextResult:
    caller.require("write")  # before reading a byte of the body
    declared = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if declared in (_JSON, _MULTIPART) and request.query_params:
        names = ", ".join(sorted(request.query_params))[:200]
        raise ValidationFailed(f"with a JSON or multipart body, give the fields in the body, not the query ({names})")
    if declared == _JSON:
        body = ContextCreate.model_validate_json(
            await _read(request, limits.MAX_CONTEXT_REQUEST_BYTES, _request_too_large())
        )
        await turns.take()  # the body is in: the work is done in a turn (api/admission.py)
        result = await contexts.create(rt, caller, body, body.content.encode())
    elif declared == _MULTIPART:
        form, data, part_type, filename = await _form(
            request, await _read(request, limits.MAX_CONTEXT_REQUEST_BYTES, _request_too_large())
        )
        await turns.take()
        result = await contexts.create(rt, caller, form, data, content_type=part_type, filename=filename)
    else:
        data = await _read(request, limits.MAX_CONTEXT_BYTES, contexts.too_large(limits.MAX_CONTEXT_BYTES + 1))
        given = request.headers.get("content-type") or None
        await turns.take()
        result = await contexts.create(rt, caller, params, data, content_type=given)
    response.status_code = 201 if result.action == "created" else 200
    return result


@router.get("", response_model=Page[Context], operation_id="list_contexts", summary="List contexts, newest first")
async def list_contexts(db: DbDep, caller: CallerDep, filters: Annotated[ContextFilters, Query()]) -> Page[Context]:
    return await contexts.list_contexts(db, caller, filters)


@router.get("/{context_id}", response_model=Context, operation_id="get_context", summary="Describe a context")
async def get_context(context_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Context:
    return await contexts.get(db, caller, context_id)


@router.get(
    "/{context_id}/content",
    operation_id="restore_context",
    summary="Restore a context's content, byte-exact, with its content type (streamed)",
    response_class=StreamingResponse,
    responses={200: {"description": "The content as it was offloaded", "content": {"*/*": _BINARY}}},
)
async def restore_context(context_id: uuid.UUID, db: DbDep, caller: CallerDep) -> StreamingResponse:
    restored = await contexts.restore(db, caller, context_id)
    ctx = restored.context
    digest = bytes.fromhex(ctx.content_sha256)
    headers = {
        "Content-Length": str(ctx.original_bytes),
        "ETag": f'"{ctx.content_sha256}"',
        "Repr-Digest": f"sha-256=:{base64.b64encode(digest).decode()}:",
        "Cache-Control": "private, no-cache",
    }
    if ctx.filename:
        name = ctx.filename.rsplit("/", 1)[-1]
        ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
        headers["Content-Disposition"] = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return StreamingResponse(iter(restored), media_type=ctx.content_type, headers=headers)


@router.delete("/{context_id}", status_code=204, operation_id="delete_context", summary="Delete a context")
async def delete_context(context_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Response:
    await contexts.delete_context(db, caller, context_id)
    return Response(status_code=204)

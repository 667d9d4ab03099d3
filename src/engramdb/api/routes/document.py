"""Documents, their chunks, and repositories kept in step with a folder."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic.json_schema import SkipJsonSchema

from engramdb import limits
from engramdb.api.deps import CallerDep, DbDep, RuntimeDep
from engramdb.schemas.common import Page
from engramdb.schemas.documents import (
    Document,
    DocumentChunk,
    DocumentChunkFilters,
    DocumentCreate,
    DocumentFilters,
    DocumentQueued,
    DocumentResult,
    DocumentUpdate,
    DocumentUploadForm,
    PruneResult,
    Repository,
    RepositoryCreate,
    RepositoryFilters,
    RepositoryPrune,
    RepositorySync,
    RepositoryUpdate,
    SyncResult,
)
from engramdb.services.document import documents, repositories, sync

documents_router = APIRouter(prefix="/documents", tags=["documents"])


repositories_router = APIRouter(prefix="/repositories", tags=["repositories"])


_QUEUED: dict[int | str, dict[str, Any]] = {
    202: {
        "model": DocumentQueued,
        "description": "Queued: a document over `ENGRAM_DOCUMENT_INLINE_BYTES`, or `background=true`; "
        "`Location` is its job",
    }
}
_UNCHANGED: dict[int | str, dict[str, Any]] = {
    200: {"model": DocumentResult, "description": "Nothing new to store: `action` is `updated` or `unchanged`"},
    **_QUEUED,
}
Background = Annotated[
    bool,
    Query(
        description="true: ingest in a background job and answer 202 at once. A document over the server's "
        "inline size (`ENGRAM_DOCUMENT_INLINE_BYTES`, 128 KiB by default) is always queued."
    ),
]


def _queued(result: DocumentQueued) -> JSONResponse:
    body = result.model_dump(mode="json")
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/jobs/{result.job.id}"})


def _status(response: Response, result: DocumentResult | DocumentQueued) -> DocumentResult | JSONResponse:
    if isinstance(result, DocumentQueued):
        return _queued(result)
    response.status_code = 201 if result.action == "created" else 200
    return result


@documents_router.post(
    "",
    status_code=201,
    response_model=DocumentResult,
    responses=_UNCHANGED,
    operation_id="create_document",
    summary="Add a document from text (201 when stored, 200 when it was already there or replaced)",
)
async def create_document(
    body: DocumentCreate, response: Response, rt: RuntimeDep, caller: CallerDep, background: Background = False
) -> DocumentResult | JSONResponse:
    return _status(response, await documents.create_text(rt, caller, body, background=background))


@documents_router.post(
    "/upload",
    status_code=201,
    response_model=DocumentResult,
    responses=_UNCHANGED,
    operation_id="upload_document",
    summary="Add a document from a file: text, Markdown, source code, HTML or PDF (multipart/form-data)",
)
async def upload_document(
    file: Annotated[UploadFile, File(description="The document itself.")],
    response: Response,
    rt: RuntimeDep,
    caller: CallerDep,
    title: Annotated[str | SkipJsonSchema[None], Form()] = None,
    path: Annotated[str | SkipJsonSchema[None], Form(description="Defaults to the file's name.")] = None,
    content_type: Annotated[
        str | SkipJsonSchema[None], Form(description="Defaults to the part's type and extension.")
    ] = None,
    source_url: Annotated[str | SkipJsonSchema[None], Form()] = None,
    tags: Annotated[
        list[str] | SkipJsonSchema[None], Form(description="Repeat the field, or separate tags with commas.")
    ] = None,
    metadata: Annotated[str | SkipJsonSchema[None], Form(description="A JSON object, as a string.")] = None,
    user_id: Annotated[uuid.UUID | SkipJsonSchema[None], Form()] = None,
    external_user_id: Annotated[str | SkipJsonSchema[None], Form()] = None,
    agent_id: Annotated[uuid.UUID | SkipJsonSchema[None], Form()] = None,
    app_id: Annotated[uuid.UUID | SkipJsonSchema[None], Form()] = None,
    repository_id: Annotated[uuid.UUID | SkipJsonSchema[None], Form()] = None,
    background: Background = False,
) -> DocumentResult | JSONResponse:
    # Fields one by one (not a form model): the OpenAPI document then describes a plain multipart object. A
    # form has no null (a client sending one would send the text "null"): leave a field out instead.
    fields = {
        "title": title,
        "path": path,
        "content_type": content_type,
        "source_url": source_url,
        "tags": tags,
        "metadata": metadata,
        "user_id": user_id,
        "external_user_id": external_user_id,
        "agent_id": agent_id,
        "app_id": app_id,
        "repository_id": repository_id,
    }
    form = DocumentUploadForm.model_validate({k: v for k, v in fields.items() if v is not None})
    data = await file.read(limits.MAX_DOCUMENT_BYTES + 1)  # one byte over is enough to refuse it
    result = await documents.create(
        rt, caller, form, data, filename=file.filename, part_type=file.content_type, background=background
    )
    return _status(response, result)


@documents_router.get(
    "", response_model=Page[Document], operation_id="list_documents", summary="List documents, newest first"
)
async def list_documents(filters: Annotated[DocumentFilters, Query()], db: DbDep, caller: CallerDep) -> Page[Document]:
    return await documents.list_documents(db, caller, filters)


@documents_router.get("/{document_id}", response_model=Document, operation_id="get_document", summary="Get a document")
async def get_document(
    document_id: uuid.UUID,
    db: DbDep,
    caller: CallerDep,
    include_content: bool = Query(True, description="false leaves out the text."),
) -> Document:
    return await documents.get(db, caller, document_id, include_content=include_content)


@documents_router.patch(
    "/{document_id}",
    response_model=Document,
    responses=_QUEUED,
    operation_id="update_document",
    summary="Update a document; new content re-embeds only the chunks that changed",
)
async def update_document(
    document_id: uuid.UUID, body: DocumentUpdate, rt: RuntimeDep, caller: CallerDep, background: Background = False
) -> Document | JSONResponse:
    result = await documents.update_document(rt, caller, document_id, body, background=background)
    return _queued(result) if isinstance(result, DocumentQueued) else result


@documents_router.delete(
    "/{document_id}", status_code=204, operation_id="delete_document", summary="Delete a document and its chunks"
)
async def delete_document(document_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Response:
    await documents.delete_document(db, caller, document_id)
    return Response(status_code=204)


@documents_router.get(
    "/{document_id}/chunks",
    response_model=Page[DocumentChunk],
    operation_id="list_document_chunks",
    summary="A document's chunks in order, with their citations",
)
async def list_document_chunks(
    document_id: uuid.UUID, filters: Annotated[DocumentChunkFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[DocumentChunk]:
    return await documents.list_chunks(db, caller, document_id, filters)


@repositories_router.post(
    "", status_code=201, response_model=Repository, operation_id="create_repository", summary="Create a repository"
)
async def create_repository(body: RepositoryCreate, db: DbDep, caller: CallerDep) -> Repository:
    return await repositories.create(db, caller, body)


@repositories_router.get(
    "", response_model=Page[Repository], operation_id="list_repositories", summary="List repositories, newest first"
)
async def list_repositories(
    filters: Annotated[RepositoryFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[Repository]:
    return await repositories.list_repositories(db, caller, filters)


@repositories_router.get(
    "/{repository_id}", response_model=Repository, operation_id="get_repository", summary="Get a repository"
)
async def get_repository(repository_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Repository:
    return await repositories.get(db, caller, repository_id)


@repositories_router.patch(
    "/{repository_id}", response_model=Repository, operation_id="update_repository", summary="Update a repository"
)
async def update_repository(
    repository_id: uuid.UUID, body: RepositoryUpdate, db: DbDep, caller: CallerDep
) -> Repository:
    return await repositories.update_repository(db, caller, repository_id, body)


@repositories_router.delete(
    "/{repository_id}",
    status_code=204,
    operation_id="delete_repository",
    summary="Delete a repository with its documents",
)
async def delete_repository(repository_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Response:
    await repositories.delete_repository(db, caller, repository_id)
    return Response(status_code=204)


@repositories_router.post(
    "/{repository_id}/files",
    response_model=SyncResult,
    operation_id="sync_repository_files",
    summary="Add or replace files by path; unreadable files are skipped, not fatal",
)
async def sync_repository_files(
    repository_id: uuid.UUID, body: RepositorySync, rt: RuntimeDep, caller: CallerDep
) -> SyncResult:
    files = sync.source_files(body)
    return SyncResult(results=await sync.sync_files(rt, caller, repository_id, files))


@repositories_router.post(
    "/{repository_id}/prune",
    response_model=PruneResult,
    operation_id="prune_repository",
    summary="Delete the documents whose path is not kept",
)
async def prune_repository(
    repository_id: uuid.UUID, body: RepositoryPrune, rt: RuntimeDep, caller: CallerDep
) -> PruneResult:
    deleted = await sync.prune(rt, caller, repository_id, set(body.keep_paths))
    return PruneResult(deleted_paths=deleted)

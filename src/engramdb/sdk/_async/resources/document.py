"""Documents and the repositories that sync them: ``client.documents``, ``client.repositories``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from engramdb.schemas.documents import (
    Document,
    DocumentChunk,
    DocumentChunkFilters,
    DocumentCreate,
    DocumentFilters,
    DocumentResult,
    DocumentUpdate,
    PruneResult,
    Repository,
    RepositoryCreate,
    RepositoryFilters,
    RepositoryPrune,
    RepositorySync,
    RepositoryUpdate,
    SyncResult,
)
from engramdb.sdk import _common as c
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._async.resources.base import Fields, Resource
from engramdb.sdk._common import Id


class Documents(Resource):
    @c.operation("create_document")
    async def create(self, document: DocumentCreate | None = None, /, **fields: Fields) -> DocumentResult:
        """Store (or re-ingest) a document from text; identical content in the same scope is stored once."""
        sent = c.body(DocumentCreate, document, fields)
        return await self._client.call(DocumentResult, "POST", "/v1/documents", json=sent)

    @c.operation("upload_document")
    async def upload(
        self,
        file: bytes,
        *,
        filename: str,
        file_content_type: str = "application/octet-stream",
        tags: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        **fields: str | Id | None,
    ) -> DocumentResult:
        """Upload a file (multipart): PDF, HTML, Markdown, code or text. ``fields``: title, path,
        content_type, source_url, user_id, external_user_id, agent_id, app_id, repository_id."""
        form: dict[str, Any] = {k: str(v) for k, v in fields.items() if v is not None}
        if tags:
            form["tags"] = list(tags)
        if metadata is not None:
            form["metadata"] = json.dumps(dict(metadata))
        files = {"file": (filename, file, file_content_type)}
        return await self._client.call(DocumentResult, "POST", "/v1/documents/upload", files=files, data=form)

    @c.operation("list_documents")
    def list(self, filters: DocumentFilters | None = None, /, **fields: Fields) -> AsyncPager[Document]:
        """Newest first, without their content. ``fields``: those of ``DocumentFilters`` (user_id,
        external_user_id, agent_id, app_id, repository_id, path_prefix, content_type, tags_any, tags_all,
        metadata, cursor, limit)."""
        return AsyncPager(self._client, "/v1/documents", Document, c.filters(DocumentFilters, filters, fields))

    @c.operation("get_document")
    async def get(self, document_id: Id, *, include_content: bool = False) -> Document:
        path = f"/v1/documents/{c.path_id(document_id)}"
        return await self._client.call(Document, "GET", path, params={"include_content": include_content})

    @c.operation("update_document")
    async def update(self, document_id: Id, change: DocumentUpdate | None = None, /, **fields: Fields) -> Document:
        sent = c.body(DocumentUpdate, change, fields)
        return await self._client.call(Document, "PATCH", f"/v1/documents/{c.path_id(document_id)}", json=sent)

    @c.operation("delete_document")
    async def delete(self, document_id: Id) -> None:
        await self._client.request("DELETE", f"/v1/documents/{c.path_id(document_id)}")

    @c.operation("list_document_chunks")
    def chunks(
        self, document_id: Id, filters: DocumentChunkFilters | None = None, /, **fields: Fields
    ) -> AsyncPager[DocumentChunk]:
        """In document order, each with its citation. ``fields``: cursor, limit."""
        path = f"/v1/documents/{c.path_id(document_id)}/chunks"
        return AsyncPager(self._client, path, DocumentChunk, c.filters(DocumentChunkFilters, filters, fields))


class Repositories(Resource):
    @c.operation("create_repository")
    async def create(self, repository: RepositoryCreate | None = None, /, **fields: Fields) -> Repository:
        sent = c.body(RepositoryCreate, repository, fields)
        return await self._client.call(Repository, "POST", "/v1/repositories", json=sent)

    @c.operation("list_repositories")
    def list(self, filters: RepositoryFilters | None = None, /, **fields: Fields) -> AsyncPager[Repository]:
        """Newest first. ``fields``: user_id, agent_id, app_id, tags_any, tags_all, cursor, limit."""
        params = c.filters(RepositoryFilters, filters, fields)
        return AsyncPager(self._client, "/v1/repositories", Repository, params)

    @c.operation("get_repository")
    async def get(self, repository_id: Id) -> Repository:
        return await self._client.call(Repository, "GET", f"/v1/repositories/{c.path_id(repository_id)}")

    @c.operation("update_repository")
    async def update(
        self, repository_id: Id, change: RepositoryUpdate | None = None, /, **fields: Fields
    ) -> Repository:
        sent = c.body(RepositoryUpdate, change, fields)
        path = f"/v1/repositories/{c.path_id(repository_id)}"
        return await self._client.call(Repository, "PATCH", path, json=sent)

    @c.operation("delete_repository")
    async def delete(self, repository_id: Id) -> None:
        await self._client.request("DELETE", f"/v1/repositories/{c.path_id(repository_id)}")

    @c.operation("sync_repository_files")
    async def sync_files(
        self, repository_id: Id, batch: RepositorySync | None = None, /, **fields: Fields
    ) -> SyncResult:
        """Add or update a batch of files by path; unchanged ones are not re-embedded."""
        sent = c.body(RepositorySync, batch, fields)
        path = f"/v1/repositories/{c.path_id(repository_id)}/files"
        return await self._client.call(SyncResult, "POST", path, json=sent, idempotent=True)

    @c.operation("prune_repository")
    async def prune(self, repository_id: Id, keep: RepositoryPrune | None = None, /, **fields: Fields) -> PruneResult:
        """Delete the repository's documents whose paths are not in ``paths``."""
        sent = c.body(RepositoryPrune, keep, fields)
        path = f"/v1/repositories/{c.path_id(repository_id)}/prune"
        return await self._client.call(PruneResult, "POST", path, json=sent, idempotent=True)

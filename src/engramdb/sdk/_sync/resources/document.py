# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.
"""Documents and the repositories that sync them: ``client.documents``, ``client.repositories``."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from time import monotonic
from typing import Any

import httpx

from engramdb.schemas.documents import (
    ChunkCounts,
    Document,
    DocumentChunk,
    DocumentChunkFilters,
    DocumentCreate,
    DocumentFilters,
    DocumentQueued,
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
from engramdb.schemas.erasure import ErasureReceipt
from engramdb.schemas.jobs import Job
from engramdb.sdk import _common as c
from engramdb.sdk._common import Id
from engramdb.sdk._sync.pager import Pager
from engramdb.sdk._sync.resources.base import Fields, Resource
from engramdb.sdk.errors import JobPendingError, error_for

WAIT_S = 900.0  # how long a call waits for a queued ingest by default


class Documents(Resource):
    """A document over the server's inline size (``ENGRAM_DOCUMENT_INLINE_BYTES``), or any sent with
    ``background=True``, is ingested by a job (the server answers 202): these calls then wait for it, up to
    ``wait`` seconds, and return as for a document ingested at once. A refusal (unsupported, empty) raises
    the error the request would have; a job still running after ``wait`` raises ``JobPendingError``, whose
    ``job`` can be followed with ``client.jobs.wait``."""

    def _settled(self, response: httpx.Response, wait: float) -> DocumentResult:
        """The result of a create or upload: at once, or once its background job ends."""
        if response.status_code != 202:
            return c.parse(DocumentResult, response)
        job = self._job(response, wait)
        result = job.result
        document = self.get(result["document_id"])
        return DocumentResult(document=document, action=result["action"], chunks=ChunkCounts(**result["chunks"]))

    def _job(self, response: httpx.Response, wait: float) -> Job:
        job = c.parse(DocumentQueued, response).job
        deadline = monotonic() + wait
        while job.status not in ("succeeded", "failed"):
            if monotonic() >= deadline:
                raise JobPendingError(job)
            time.sleep(min(1.0, max(0.0, deadline - monotonic())))
            job = self._client.call(Job, "GET", f"/v1/jobs/{job.id}")
        error = job.result.get("error")
        if job.status == "failed":
            problem = error if isinstance(error, dict) else {"status": 500, "detail": job.error or "the ingest failed"}
            status = problem.get("status")
            failed = httpx.Response(status if isinstance(status, int) else 500, json=problem, request=response.request)
            raise error_for(failed)
        return job

    @c.operation("create_document")
    def create(
        self,
        document: DocumentCreate | None = None,
        /,
        *,
        background: bool = False,
        wait: float = WAIT_S,
        **fields: Fields,
    ) -> DocumentResult:
        """Store (or re-ingest) a document from text; identical content in the same scope is stored once."""
        sent = c.body(DocumentCreate, document, fields)
        params = {"background": True} if background else None
        return self._settled(self._client.request("POST", "/v1/documents", json=sent, params=params), wait)

    @c.operation("upload_document")
    def upload(
        self,
        file: bytes,
        *,
        filename: str,
        file_content_type: str = "application/octet-stream",
        tags: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        background: bool = False,
        wait: float = WAIT_S,
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
        params = {"background": True} if background else None
        response = self._client.request("POST", "/v1/documents/upload", files=files, data=form, params=params)
        return self._settled(response, wait)

    @c.operation("list_documents")
    def list(self, filters: DocumentFilters | None = None, /, **fields: Fields) -> Pager[Document]:
        """Newest first, without their content. ``fields``: those of ``DocumentFilters`` (user_id,
        external_user_id, agent_id, app_id, repository_id, path_prefix, content_type, tags_any, tags_all,
        metadata, cursor, limit)."""
        return Pager(self._client, "/v1/documents", Document, c.filters(DocumentFilters, filters, fields))

    @c.operation("get_document")
    def get(self, document_id: Id, *, include_content: bool = False) -> Document:
        path = f"/v1/documents/{c.path_id(document_id)}"
        return self._client.call(Document, "GET", path, params={"include_content": include_content})

    @c.operation("update_document")
    def update(
        self,
        document_id: Id,
        change: DocumentUpdate | None = None,
        /,
        *,
        background: bool = False,
        wait: float = WAIT_S,
        **fields: Fields,
    ) -> Document:
        sent = c.body(DocumentUpdate, change, fields)
        params = {"background": True} if background else None
        path = f"/v1/documents/{c.path_id(document_id)}"
        response = self._client.request("PATCH", path, json=sent, params=params)
        if response.status_code != 202:
            return c.parse(Document, response)
        self._job(response, wait)
        return self.get(document_id)

    @c.operation("delete_document")
    def delete(self, document_id: Id) -> None:
        self._client.request("DELETE", f"/v1/documents/{c.path_id(document_id)}")

    @c.operation("erase_document")
    def erase(self, document_id: Id) -> ErasureReceipt:
        """Erase the document for good with its chunks and the jobs that ingested it; the answer is the
        erasure's receipt: keep it."""
        return self._client.call(ErasureReceipt, "POST", f"/v1/documents/{c.path_id(document_id)}/erase")

    @c.operation("list_document_chunks")
    def chunks(
        self, document_id: Id, filters: DocumentChunkFilters | None = None, /, **fields: Fields
    ) -> Pager[DocumentChunk]:
        """In document order, each with its citation. ``fields``: cursor, limit."""
        path = f"/v1/documents/{c.path_id(document_id)}/chunks"
        return Pager(self._client, path, DocumentChunk, c.filters(DocumentChunkFilters, filters, fields))


class Repositories(Resource):
    @c.operation("create_repository")
    def create(self, repository: RepositoryCreate | None = None, /, **fields: Fields) -> Repository:
        sent = c.body(RepositoryCreate, repository, fields)
        return self._client.call(Repository, "POST", "/v1/repositories", json=sent)

    @c.operation("list_repositories")
    def list(self, filters: RepositoryFilters | None = None, /, **fields: Fields) -> Pager[Repository]:
        """Newest first. ``fields``: user_id, agent_id, app_id, tags_any, tags_all, cursor, limit."""
        params = c.filters(RepositoryFilters, filters, fields)
        return Pager(self._client, "/v1/repositories", Repository, params)

    @c.operation("get_repository")
    def get(self, repository_id: Id) -> Repository:
        return self._client.call(Repository, "GET", f"/v1/repositories/{c.path_id(repository_id)}")

    @c.operation("update_repository")
    def update(self, repository_id: Id, change: RepositoryUpdate | None = None, /, **fields: Fields) -> Repository:
        sent = c.body(RepositoryUpdate, change, fields)
        path = f"/v1/repositories/{c.path_id(repository_id)}"
        return self._client.call(Repository, "PATCH", path, json=sent)

    @c.operation("delete_repository")
    def delete(self, repository_id: Id) -> None:
        self._client.request("DELETE", f"/v1/repositories/{c.path_id(repository_id)}")

    @c.operation("erase_repository")
    def erase(self, repository_id: Id) -> ErasureReceipt:
        """Erase the repository for good with its documents and their ingests; the answer is the erasure's
        receipt: keep it."""
        path = f"/v1/repositories/{c.path_id(repository_id)}/erase"
        return self._client.call(ErasureReceipt, "POST", path)

    @c.operation("sync_repository_files")
    def sync_files(self, repository_id: Id, batch: RepositorySync | None = None, /, **fields: Fields) -> SyncResult:
        """Add or update a batch of files by path; unchanged ones are not re-embedded."""
        sent = c.body(RepositorySync, batch, fields)
        path = f"/v1/repositories/{c.path_id(repository_id)}/files"
        return self._client.call(SyncResult, "POST", path, json=sent, idempotent=True)

    @c.operation("prune_repository")
    def prune(self, repository_id: Id, keep: RepositoryPrune | None = None, /, **fields: Fields) -> PruneResult:
        """Delete the repository's documents whose paths are not in ``paths``."""
        sent = c.body(RepositoryPrune, keep, fields)
        path = f"/v1/repositories/{c.path_id(repository_id)}/prune"
        return self._client.call(PruneResult, "POST", path, json=sent, idempotent=True)

"""Resource namespaces of the async client: one method per API operation, marked with its operation id.

Bodies are the API's own Pydantic models: pass one, or its fields as keywords (validated before
sending). List calls return an ``AsyncPager``: iterate it, or ask for one page.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from time import monotonic
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel

from engramdb.schemas.audit import AuditEntry
from engramdb.schemas.categories import Category, CategoryCreate, CategoryUpdate
from engramdb.schemas.conversations import (
    Message,
    MessageBatch,
    MessagesAdded,
    Session,
    SessionCreate,
    SessionUpdate,
)
from engramdb.schemas.directory import (
    Agent,
    AgentCreate,
    AgentUpdate,
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyUpdate,
    App,
    AppCreate,
    AppUpdate,
    Team,
    TeamCreate,
    TeamUpdate,
    User,
    UserCreate,
    UserUpdate,
)
from engramdb.schemas.documents import (
    Document,
    DocumentChunk,
    DocumentCreate,
    DocumentResult,
    DocumentUpdate,
    PruneResult,
    Repository,
    RepositoryCreate,
    RepositoryPrune,
    RepositorySync,
    RepositoryUpdate,
    SyncResult,
)
from engramdb.schemas.export import ImportResult
from engramdb.schemas.graph import (
    Entity,
    EntityMerge,
    EntitySplit,
    EntityUpdate,
    Fact,
    FactCreate,
    FactResult,
    Neighbourhood,
    Paths,
)
from engramdb.schemas.jobs import Job, Usage
from engramdb.schemas.memories import Memory, MemoryCreate, MemoryHistoryEntry, MemoryStateChange, MemoryUpdate
from engramdb.schemas.narratives import Narrative
from engramdb.schemas.tags import TagCount, TagRename, TagRenameResult
from engramdb.schemas.webhooks import Webhook, WebhookCreate, WebhookCreated, WebhookDelivery, WebhookUpdate
from engramdb.sdk import _common as c
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._common import Id

if TYPE_CHECKING:
    from engramdb.sdk._async.client import AsyncClient

Fields = Any  # keyword fields of the operation's request model
M = TypeVar("M", bound=BaseModel)
C = TypeVar("C", bound=BaseModel)
U = TypeVar("U", bound=BaseModel)


class _Resource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client


class _Directory(_Resource, Generic[M, C, U]):
    """Teams, users, agents and apps share one shape: each subclass names its path, models and the
    operation ids of its five methods (``ops``), which mark per-class copies of these methods."""

    _path = ""
    _model: type[M]
    _create: type[C]
    _update: type[U]

    def __init_subclass__(cls, ops: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, operation_id in (ops or {}).items():
            inherited = getattr(cls, name)

            @functools.wraps(inherited)
            def marked(self: Any, *args: Any, __call: Any = inherited, **fields: Any) -> Any:
                return __call(self, *args, **fields)

            setattr(cls, name, c.operation(operation_id)(marked))

    async def create(self, item: C | None = None, /, **fields: Fields) -> M:
        return await self._client.call(self._model, "POST", self._path, json=c.body(self._create, item, fields))

    def list(self, *, cursor: str | None = None, limit: int | None = None) -> AsyncPager[M]:
        return AsyncPager(self._client, self._path, self._model, {"cursor": cursor, "limit": limit})

    async def get(self, item_id: Id) -> M:
        return await self._client.call(self._model, "GET", f"{self._path}/{c.path_id(item_id)}")

    async def update(self, item_id: Id, change: U | None = None, /, **fields: Fields) -> M:
        sent = c.body(self._update, change, fields)
        return await self._client.call(self._model, "PATCH", f"{self._path}/{c.path_id(item_id)}", json=sent)

    async def delete(self, item_id: Id) -> None:
        await self._client.request("DELETE", f"{self._path}/{c.path_id(item_id)}")


def _crud(noun: str) -> dict[str, str]:
    """The operation ids of a directory resource's five methods."""
    names = {"create": "create_{}", "list": "list_{}s", "get": "get_{}", "update": "update_{}", "delete": "delete_{}"}
    return {method: pattern.format(noun) for method, pattern in names.items()}


class Teams(_Directory[Team, TeamCreate, TeamUpdate], ops=_crud("team")):
    _path, _model, _create, _update = "/v1/teams", Team, TeamCreate, TeamUpdate


class Agents(_Directory[Agent, AgentCreate, AgentUpdate], ops=_crud("agent")):
    _path, _model, _create, _update = "/v1/agents", Agent, AgentCreate, AgentUpdate


class Apps(_Directory[App, AppCreate, AppUpdate], ops=_crud("app")):
    _path, _model, _create, _update = "/v1/apps", App, AppCreate, AppUpdate


class Narratives(_Resource):
    """``client.users.narratives``: the versioned profile of a user."""

    @c.operation("refresh_user_narrative")
    async def refresh(self, user_id: Id, *, wait: bool = False) -> Job:
        path = f"/v1/users/{c.path_id(user_id)}/narrative"
        return await self._client.call(Job, "POST", path, params={"wait": wait})

    @c.operation("get_user_narrative")
    async def get(self, user_id: Id) -> Narrative:
        return await self._client.call(Narrative, "GET", f"/v1/users/{c.path_id(user_id)}/narrative")

    @c.operation("list_user_narratives")
    def list(self, user_id: Id, *, cursor: str | None = None, limit: int | None = None) -> AsyncPager[Narrative]:
        path = f"/v1/users/{c.path_id(user_id)}/narratives"
        return AsyncPager(self._client, path, Narrative, {"cursor": cursor, "limit": limit})


class Users(_Directory[User, UserCreate, UserUpdate], ops=_crud("user")):
    _path, _model, _create, _update = "/v1/users", User, UserCreate, UserUpdate

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.narratives = Narratives(client)

    @c.operation("get_user_by_external_id")
    async def get_by_external_id(self, external_id: str) -> User:
        return await self._client.call(User, "GET", f"/v1/users/by-external-id/{c.path_id(external_id)}")


class Keys(_Resource):
    """API keys of the caller's organization (admin keys only)."""

    @c.operation("create_api_key")
    async def create(self, key: ApiKeyCreate | None = None, /, **fields: Fields) -> ApiKeyCreated:
        return await self._client.call(ApiKeyCreated, "POST", "/v1/keys", json=c.body(ApiKeyCreate, key, fields))

    @c.operation("list_api_keys")
    def list(
        self, *, include_revoked: bool | None = None, cursor: str | None = None, limit: int | None = None
    ) -> AsyncPager[ApiKey]:
        params = {"include_revoked": include_revoked, "cursor": cursor, "limit": limit}
        return AsyncPager(self._client, "/v1/keys", ApiKey, params)

    @c.operation("get_api_key")
    async def get(self, key_id: Id) -> ApiKey:
        return await self._client.call(ApiKey, "GET", f"/v1/keys/{c.path_id(key_id)}")

    @c.operation("update_api_key")
    async def update(self, key_id: Id, change: ApiKeyUpdate | None = None, /, **fields: Fields) -> ApiKey:
        sent = c.body(ApiKeyUpdate, change, fields)
        return await self._client.call(ApiKey, "PATCH", f"/v1/keys/{c.path_id(key_id)}", json=sent)

    @c.operation("delete_api_key")
    async def delete(self, key_id: Id) -> ApiKey:
        return await self._client.call(ApiKey, "DELETE", f"/v1/keys/{c.path_id(key_id)}")

    @c.operation("revoke_api_key")
    async def revoke(self, key_id: Id) -> ApiKey:
        return await self._client.call(ApiKey, "POST", f"/v1/keys/{c.path_id(key_id)}/revoke", idempotent=True)


class SessionMessages(_Resource):
    """``client.sessions.messages``: a session's message log."""

    @c.operation("add_messages")
    async def add(
        self,
        session_id: Id,
        messages: MessageBatch | Iterable[Mapping[str, Any]] | None = None,
        /,
        *,
        wait: bool = False,
        **fields: Fields,
    ) -> MessagesAdded:
        """Append messages (dicts with role, content, optional occurred_at, name, metadata, tags …).
        ``wait=True`` returns once their extraction job has finished (at most 60 s)."""
        given: Any = messages
        if messages is not None and not isinstance(messages, MessageBatch):
            given, fields = None, {**fields, "messages": list(messages)}
        sent = c.body(MessageBatch, given, fields)
        path = f"/v1/sessions/{c.path_id(session_id)}/messages"
        return await self._client.call(MessagesAdded, "POST", path, json=sent, params={"wait": wait})

    @c.operation("list_messages")
    def list(
        self,
        session_id: Id,
        *,
        role: str | None = None,
        tags_any: list[str] | None = None,
        tags_all: list[str] | None = None,
        occurred_after: datetime | None = None,
        occurred_before: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
        order: Literal["asc", "desc"] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Message]:
        params = {
            "role": role,
            "tags_any": tags_any,
            "tags_all": tags_all,
            "occurred_after": occurred_after,
            "occurred_before": occurred_before,
            "metadata": metadata,
            "order": order,
            "cursor": cursor,
            "limit": limit,
        }
        return AsyncPager(self._client, f"/v1/sessions/{c.path_id(session_id)}/messages", Message, params)


class Sessions(_Resource):
    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.messages = SessionMessages(client)

    @c.operation("create_session")
    async def create(self, session: SessionCreate | None = None, /, **fields: Fields) -> Session:
        sent = c.body(SessionCreate, session, fields)
        return await self._client.call(Session, "POST", "/v1/sessions", json=sent)

    @c.operation("list_sessions")
    def list(
        self,
        *,
        user_id: Id | None = None,
        external_user_id: str | None = None,
        agent_id: Id | None = None,
        app_id: Id | None = None,
        status: str | None = None,
        tags_any: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Session]:
        """``metadata``: sessions whose metadata contains this object."""
        params = {
            "user_id": user_id,
            "external_user_id": external_user_id,
            "agent_id": agent_id,
            "app_id": app_id,
            "status": status,
            "tags_any": tags_any,
            "metadata": metadata,
            "cursor": cursor,
            "limit": limit,
        }
        return AsyncPager(self._client, "/v1/sessions", Session, params)

    @c.operation("get_session")
    async def get(self, session_id: Id) -> Session:
        return await self._client.call(Session, "GET", f"/v1/sessions/{c.path_id(session_id)}")

    @c.operation("update_session")
    async def update(self, session_id: Id, change: SessionUpdate | None = None, /, **fields: Fields) -> Session:
        sent = c.body(SessionUpdate, change, fields)
        return await self._client.call(Session, "PATCH", f"/v1/sessions/{c.path_id(session_id)}", json=sent)

    @c.operation("delete_session")
    async def delete(self, session_id: Id) -> None:
        await self._client.request("DELETE", f"/v1/sessions/{c.path_id(session_id)}")

    @c.operation("close_session")
    async def close(self, session_id: Id) -> Session:
        path = f"/v1/sessions/{c.path_id(session_id)}/close"
        return await self._client.call(Session, "POST", path, idempotent=True)


class Messages(_Resource):
    @c.operation("get_message")
    async def get(self, message_id: Id) -> Message:
        return await self._client.call(Message, "GET", f"/v1/messages/{c.path_id(message_id)}")


class Memories(_Resource):
    @c.operation("create_memory")
    async def create(self, memory: MemoryCreate | None = None, /, **fields: Fields) -> Memory:
        sent = c.body(MemoryCreate, memory, fields)
        return await self._client.call(Memory, "POST", "/v1/memories", json=sent)

    @c.operation("list_memories")
    def list(
        self,
        *,
        user_id: Id | None = None,
        external_user_id: str | None = None,
        agent_id: Id | None = None,
        app_id: Id | None = None,
        session_id: Id | None = None,
        type: str | None = None,
        state: str | None = None,
        tags_any: list[str] | None = None,
        tags_all: list[str] | None = None,
        categories: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_expired: bool | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Memory]:
        params = {
            "user_id": user_id,
            "external_user_id": external_user_id,
            "agent_id": agent_id,
            "app_id": app_id,
            "session_id": session_id,
            "type": type,
            "state": state,
            "tags_any": tags_any,
            "tags_all": tags_all,
            "categories": categories,
            "metadata": metadata,
            "created_after": created_after,
            "created_before": created_before,
            "include_expired": include_expired,
            "cursor": cursor,
            "limit": limit,
        }
        return AsyncPager(self._client, "/v1/memories", Memory, params)

    @c.operation("get_memory")
    async def get(self, memory_id: Id) -> Memory:
        return await self._client.call(Memory, "GET", f"/v1/memories/{c.path_id(memory_id)}")

    @c.operation("update_memory")
    async def update(self, memory_id: Id, change: MemoryUpdate | None = None, /, **fields: Fields) -> Memory:
        sent = c.body(MemoryUpdate, change, fields)
        return await self._client.call(Memory, "PATCH", f"/v1/memories/{c.path_id(memory_id)}", json=sent)

    @c.operation("delete_memory")
    async def delete(self, memory_id: Id, *, hard: bool = False) -> None:
        """Soft delete (state ``deleted``, kept in history) unless ``hard``."""
        await self._client.request("DELETE", f"/v1/memories/{c.path_id(memory_id)}", params={"hard": hard})

    @c.operation("change_memory_state")
    async def set_state(self, memory_id: Id, change: MemoryStateChange | None = None, /, **fields: Fields) -> Memory:
        sent = c.body(MemoryStateChange, change, fields)
        path = f"/v1/memories/{c.path_id(memory_id)}/state"
        return await self._client.call(Memory, "POST", path, json=sent, idempotent=True)

    @c.operation("get_memory_history")
    def history(
        self, memory_id: Id, *, cursor: str | None = None, limit: int | None = None
    ) -> AsyncPager[MemoryHistoryEntry]:
        path = f"/v1/memories/{c.path_id(memory_id)}/history"
        return AsyncPager(self._client, path, MemoryHistoryEntry, {"cursor": cursor, "limit": limit})


class Facts(_Resource):
    @c.operation("create_fact")
    async def create(self, fact: FactCreate | None = None, /, **fields: Fields) -> FactResult:
        """Record a subject–predicate–object triple; consolidated like extracted facts (ADD / NOOP /
        INVALIDATE)."""
        return await self._client.call(FactResult, "POST", "/v1/facts", json=c.body(FactCreate, fact, fields))

    @c.operation("list_facts")
    def list(
        self,
        *,
        subject: str | None = None,
        entity_id: Id | None = None,
        predicate: str | None = None,
        user_id: Id | None = None,
        valid_at: datetime | None = None,
        known_at: datetime | None = None,
        include_history: bool | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Fact]:
        """``valid_at``: what was true then; ``known_at``: what Engram believed then."""
        params = {
            "subject": subject,
            "entity_id": entity_id,
            "predicate": predicate,
            "user_id": user_id,
            "valid_at": valid_at,
            "known_at": known_at,
            "include_history": include_history,
            "cursor": cursor,
            "limit": limit,
        }
        return AsyncPager(self._client, "/v1/facts", Fact, params)

    @c.operation("get_fact")
    async def get(self, fact_id: Id) -> Fact:
        return await self._client.call(Fact, "GET", f"/v1/facts/{c.path_id(fact_id)}")

    @c.operation("retract_fact")
    async def retract(self, fact_id: Id) -> Fact:
        return await self._client.call(Fact, "DELETE", f"/v1/facts/{c.path_id(fact_id)}")


class Entities(_Resource):
    @c.operation("list_entities")
    def list(
        self,
        *,
        q: str | None = None,
        type: str | None = None,
        user_id: Id | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Entity]:
        params = {"q": q, "type": type, "user_id": user_id, "cursor": cursor, "limit": limit}
        return AsyncPager(self._client, "/v1/entities", Entity, params)

    @c.operation("get_entity")
    async def get(self, entity_id: Id) -> Entity:
        return await self._client.call(Entity, "GET", f"/v1/entities/{c.path_id(entity_id)}")

    @c.operation("update_entity")
    async def update(self, entity_id: Id, change: EntityUpdate | None = None, /, **fields: Fields) -> Entity:
        sent = c.body(EntityUpdate, change, fields)
        return await self._client.call(Entity, "PATCH", f"/v1/entities/{c.path_id(entity_id)}", json=sent)

    @c.operation("merge_entities")
    async def merge(self, entity_id: Id, merge: EntityMerge | None = None, /, **fields: Fields) -> Entity:
        sent = c.body(EntityMerge, merge, fields)
        return await self._client.call(Entity, "POST", f"/v1/entities/{c.path_id(entity_id)}/merge", json=sent)

    @c.operation("split_entity")
    async def split(self, entity_id: Id, split: EntitySplit | None = None, /, **fields: Fields) -> Entity:
        sent = c.body(EntitySplit, split, fields)
        return await self._client.call(Entity, "POST", f"/v1/entities/{c.path_id(entity_id)}/split", json=sent)

    @c.operation("get_entity_neighbors")
    async def neighbors(
        self,
        entity_id: Id,
        *,
        depth: int | None = None,
        valid_at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Neighbourhood:
        params = {"depth": depth, "valid_at": valid_at, "known_at": known_at}
        path = f"/v1/entities/{c.path_id(entity_id)}/neighbors"
        return await self._client.call(Neighbourhood, "GET", path, params=params)

    @c.operation("get_entity_paths")
    async def paths(
        self,
        entity_id: Id,
        target_id: Id,
        *,
        max_depth: int | None = None,
        limit: int | None = None,
        valid_at: datetime | None = None,
        known_at: datetime | None = None,
    ) -> Paths:
        params = {"max_depth": max_depth, "limit": limit, "valid_at": valid_at, "known_at": known_at}
        path = f"/v1/entities/{c.path_id(entity_id)}/paths/{c.path_id(target_id)}"
        return await self._client.call(Paths, "GET", path, params=params)


class Categories(_Resource):
    @c.operation("list_categories")
    async def list(self) -> list[Category]:
        found = (await self._client.request("GET", "/v1/categories")).json()
        return [Category.model_validate(item) for item in found]

    @c.operation("create_category")
    async def create(self, category: CategoryCreate | None = None, /, **fields: Fields) -> Category:
        sent = c.body(CategoryCreate, category, fields)
        return await self._client.call(Category, "POST", "/v1/categories", json=sent)

    @c.operation("update_category")
    async def update(self, category_id: Id, change: CategoryUpdate | None = None, /, **fields: Fields) -> Category:
        sent = c.body(CategoryUpdate, change, fields)
        return await self._client.call(Category, "PATCH", f"/v1/categories/{c.path_id(category_id)}", json=sent)

    @c.operation("delete_category")
    async def delete(self, category_id: Id) -> None:
        await self._client.request("DELETE", f"/v1/categories/{c.path_id(category_id)}")


class Jobs(_Resource):
    @c.operation("get_job")
    async def get(self, job_id: Id) -> Job:
        return await self._client.call(Job, "GET", f"/v1/jobs/{c.path_id(job_id)}")

    @c.operation("list_jobs")
    def list(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        session_id: Id | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Job]:
        params = {"status": status, "kind": kind, "session_id": session_id, "cursor": cursor, "limit": limit}
        return AsyncPager(self._client, "/v1/jobs", Job, params)

    async def wait(self, job_id: Id, *, timeout: float = 60.0, interval: float = 0.5) -> Job:
        """Poll until the job has succeeded or failed (a failed attempt that will be retried is still
        running), or ``timeout`` seconds have passed; returns the job as it then stands."""
        deadline = monotonic() + timeout
        while True:
            job = await self.get(job_id)
            if job.status in ("succeeded", "failed") or monotonic() >= deadline:
                return job
            await asyncio.sleep(interval)

    @c.operation("retry_job")
    async def retry(self, job_id: Id) -> Job:
        return await self._client.call(Job, "POST", f"/v1/jobs/{c.path_id(job_id)}/retry")

    @c.operation("get_usage")
    async def usage(self, *, since: datetime | None = None, until: datetime | None = None) -> Usage:
        """Jobs and LLM tokens per kind and provider."""
        return await self._client.call(Usage, "GET", "/v1/usage", params={"since": since, "until": until})


class Documents(_Resource):
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
    def list(
        self,
        *,
        user_id: Id | None = None,
        external_user_id: str | None = None,
        agent_id: Id | None = None,
        app_id: Id | None = None,
        repository_id: Id | None = None,
        path_prefix: str | None = None,
        content_type: str | None = None,
        tags_any: list[str] | None = None,
        tags_all: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Document]:
        params = {
            "user_id": user_id,
            "external_user_id": external_user_id,
            "agent_id": agent_id,
            "app_id": app_id,
            "repository_id": repository_id,
            "path_prefix": path_prefix,
            "content_type": content_type,
            "tags_any": tags_any,
            "tags_all": tags_all,
            "metadata": metadata,
            "cursor": cursor,
            "limit": limit,
        }
        return AsyncPager(self._client, "/v1/documents", Document, params)

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
        self, document_id: Id, *, cursor: str | None = None, limit: int | None = None
    ) -> AsyncPager[DocumentChunk]:
        path = f"/v1/documents/{c.path_id(document_id)}/chunks"
        return AsyncPager(self._client, path, DocumentChunk, {"cursor": cursor, "limit": limit})


class Repositories(_Resource):
    @c.operation("create_repository")
    async def create(self, repository: RepositoryCreate | None = None, /, **fields: Fields) -> Repository:
        sent = c.body(RepositoryCreate, repository, fields)
        return await self._client.call(Repository, "POST", "/v1/repositories", json=sent)

    @c.operation("list_repositories")
    def list(
        self,
        *,
        user_id: Id | None = None,
        agent_id: Id | None = None,
        app_id: Id | None = None,
        tags_any: list[str] | None = None,
        tags_all: list[str] | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Repository]:
        params = {
            "user_id": user_id,
            "agent_id": agent_id,
            "app_id": app_id,
            "tags_any": tags_any,
            "tags_all": tags_all,
            "cursor": cursor,
            "limit": limit,
        }
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


class Tags(_Resource):
    @c.operation("list_tags")
    def list(
        self, *, prefix: str | None = None, cursor: str | None = None, limit: int | None = None
    ) -> AsyncPager[TagCount]:
        return AsyncPager(self._client, "/v1/tags", TagCount, {"prefix": prefix, "cursor": cursor, "limit": limit})

    @c.operation("rename_tag")
    async def rename(self, rename: TagRename | None = None, /, **fields: Fields) -> TagRenameResult:
        sent = c.body(TagRename, rename, fields)
        return await self._client.call(TagRenameResult, "POST", "/v1/tags/rename", json=sent, idempotent=True)


class Audit(_Resource):
    @c.operation("list_audit_entries")
    def list(
        self,
        *,
        action: str | None = None,
        entity_type: str | None = None,
        entity_id: Id | None = None,
        key_id: Id | None = None,
        after: datetime | None = None,
        before: datetime | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[AuditEntry]:
        params = {
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "key_id": key_id,
            "after": after,
            "before": before,
            "cursor": cursor,
            "limit": limit,
        }
        return AsyncPager(self._client, "/v1/audit", AuditEntry, params)


class Webhooks(_Resource):
    """Signed event deliveries to your endpoints (admin keys only); see docs/api.md, Webhooks."""

    @c.operation("create_webhook")
    async def create(self, webhook: WebhookCreate | None = None, /, **fields: Fields) -> WebhookCreated:
        """Subscribe a URL to event types; the answer holds the signing secret, shown this once."""
        sent = c.body(WebhookCreate, webhook, fields)
        return await self._client.call(WebhookCreated, "POST", "/v1/webhooks", json=sent)

    @c.operation("list_webhooks")
    def list(self, *, cursor: str | None = None, limit: int | None = None) -> AsyncPager[Webhook]:
        return AsyncPager(self._client, "/v1/webhooks", Webhook, {"cursor": cursor, "limit": limit})

    @c.operation("get_webhook")
    async def get(self, webhook_id: Id) -> Webhook:
        return await self._client.call(Webhook, "GET", f"/v1/webhooks/{c.path_id(webhook_id)}")

    @c.operation("update_webhook")
    async def update(self, webhook_id: Id, change: WebhookUpdate | None = None, /, **fields: Fields) -> Webhook:
        sent = c.body(WebhookUpdate, change, fields)
        return await self._client.call(Webhook, "PATCH", f"/v1/webhooks/{c.path_id(webhook_id)}", json=sent)

    @c.operation("delete_webhook")
    async def delete(self, webhook_id: Id) -> None:
        await self._client.request("DELETE", f"/v1/webhooks/{c.path_id(webhook_id)}")

    @c.operation("rotate_webhook_secret")
    async def rotate_secret(self, webhook_id: Id) -> WebhookCreated:
        path = f"/v1/webhooks/{c.path_id(webhook_id)}/rotate-secret"
        return await self._client.call(WebhookCreated, "POST", path)

    @c.operation("test_webhook")
    async def test(self, webhook_id: Id) -> WebhookDelivery:
        """Queue a ``webhook.test`` event to the endpoint."""
        return await self._client.call(WebhookDelivery, "POST", f"/v1/webhooks/{c.path_id(webhook_id)}/test")

    @c.operation("list_webhook_deliveries")
    def deliveries(
        self,
        webhook_id: Id,
        *,
        status: str | None = None,
        event_type: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[WebhookDelivery]:
        """The delivery log, newest first: every attempt's status code, error and time."""
        params = {"status": status, "event_type": event_type, "cursor": cursor, "limit": limit}
        path = f"/v1/webhooks/{c.path_id(webhook_id)}/deliveries"
        return AsyncPager(self._client, path, WebhookDelivery, params)

    @c.operation("get_webhook_delivery")
    async def get_delivery(self, webhook_id: Id, delivery_id: Id) -> WebhookDelivery:
        path = f"/v1/webhooks/{c.path_id(webhook_id)}/deliveries/{c.path_id(delivery_id)}"
        return await self._client.call(WebhookDelivery, "GET", path)

    @c.operation("replay_webhook_delivery")
    async def replay(self, webhook_id: Id, delivery_id: Id) -> WebhookDelivery:
        """Send a delivery again (same event id, so receivers can de-duplicate)."""
        path = f"/v1/webhooks/{c.path_id(webhook_id)}/deliveries/{c.path_id(delivery_id)}/replay"
        return await self._client.call(WebhookDelivery, "POST", path)


class Data(_Resource):
    """Export and import of an organization or one user as JSON Lines."""

    @c.operation("export_data")
    async def export(
        self,
        *,
        user_id: Id | None = None,
        external_user_id: str | None = None,
        include_embeddings: bool = True,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every record of the org (or of one user), one dict per line, header first, read as it streams."""
        params = {"user_id": user_id, "external_user_id": external_user_id, "include_embeddings": include_embeddings}
        async with self._client.stream("GET", "/v1/export", params=params) as response:
            async for line in response.aiter_lines():
                if line.strip():
                    yield json.loads(line)

    @c.operation("import_data")
    async def import_(self, lines: bytes | Iterable[Mapping[str, Any]]) -> ImportResult:
        """Import an export (bytes of JSON Lines, or its records) into the key's organization; rows whose
        ids are there already are left as they are, so importing twice adds nothing."""
        content = lines if isinstance(lines, bytes) else "".join(json.dumps(x) + "\n" for x in lines).encode()
        headers = {"Content-Type": "application/x-ndjson"}
        # Not repeated on a timeout (a long import may still be running); an hour to read the answer.
        timeout = httpx.Timeout(60.0, read=3600.0)
        return await self._client.call(
            ImportResult, "POST", "/v1/import", content=content, headers=headers, idempotent=False, timeout=timeout
        )

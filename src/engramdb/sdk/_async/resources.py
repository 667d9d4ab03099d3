"""Resource namespaces of the async client: one method per API operation, marked with its operation id.

Bodies are the API's own Pydantic models: pass one, or its fields as keywords (validated before
sending). List calls return an ``AsyncPager``: iterate it, or ask for one page.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

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
from engramdb.sdk import _common as c
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._common import Id

if TYPE_CHECKING:
    from engramdb.sdk._async.client import AsyncClient

Fields = Any  # keyword fields of the operation's request model


class _Resource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client


class _Directory(_Resource):
    """Teams, users, agents and apps share one shape."""

    _path = ""
    _model: Any = None
    _create: Any = None
    _update: Any = None

    async def _create_one(self, given: Any, fields: Mapping[str, Any]) -> Any:
        return await self._client.call(self._model, "POST", self._path, json=c.body(self._create, given, fields))

    def _list(self, cursor: str | None, limit: int | None) -> Any:
        return AsyncPager(self._client, self._path, self._model, {"cursor": cursor, "limit": limit})

    async def _get(self, item_id: Id) -> Any:
        return await self._client.call(self._model, "GET", f"{self._path}/{c.path_id(item_id)}")

    async def _update_one(self, item_id: Id, given: Any, fields: Mapping[str, Any]) -> Any:
        sent = c.body(self._update, given, fields)
        return await self._client.call(self._model, "PATCH", f"{self._path}/{c.path_id(item_id)}", json=sent)

    async def _delete(self, item_id: Id) -> None:
        await self._client.request("DELETE", f"{self._path}/{c.path_id(item_id)}")


class Teams(_Directory):
    _path, _model, _create, _update = "/v1/teams", Team, TeamCreate, TeamUpdate

    @c.operation("create_team")
    async def create(self, team: TeamCreate | None = None, /, **fields: Fields) -> Team:
        found: Team = await self._create_one(team, fields)
        return found

    @c.operation("list_teams")
    def list(self, *, cursor: str | None = None, limit: int | None = None) -> AsyncPager[Team]:
        pager: AsyncPager[Team] = self._list(cursor, limit)
        return pager

    @c.operation("get_team")
    async def get(self, team_id: Id) -> Team:
        found: Team = await self._get(team_id)
        return found

    @c.operation("update_team")
    async def update(self, team_id: Id, change: TeamUpdate | None = None, /, **fields: Fields) -> Team:
        found: Team = await self._update_one(team_id, change, fields)
        return found

    @c.operation("delete_team")
    async def delete(self, team_id: Id) -> None:
        await self._delete(team_id)


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


class Users(_Directory):
    _path, _model, _create, _update = "/v1/users", User, UserCreate, UserUpdate

    def __init__(self, client: AsyncClient) -> None:
        super().__init__(client)
        self.narratives = Narratives(client)

    @c.operation("create_user")
    async def create(self, user: UserCreate | None = None, /, **fields: Fields) -> User:
        found: User = await self._create_one(user, fields)
        return found

    @c.operation("list_users")
    def list(self, *, cursor: str | None = None, limit: int | None = None) -> AsyncPager[User]:
        pager: AsyncPager[User] = self._list(cursor, limit)
        return pager

    @c.operation("get_user")
    async def get(self, user_id: Id) -> User:
        found: User = await self._get(user_id)
        return found

    @c.operation("get_user_by_external_id")
    async def get_by_external_id(self, external_id: str) -> User:
        return await self._client.call(User, "GET", f"/v1/users/by-external-id/{c.path_id(external_id)}")

    @c.operation("update_user")
    async def update(self, user_id: Id, change: UserUpdate | None = None, /, **fields: Fields) -> User:
        found: User = await self._update_one(user_id, change, fields)
        return found

    @c.operation("delete_user")
    async def delete(self, user_id: Id) -> None:
        await self._delete(user_id)


class Agents(_Directory):
    _path, _model, _create, _update = "/v1/agents", Agent, AgentCreate, AgentUpdate

    @c.operation("create_agent")
    async def create(self, agent: AgentCreate | None = None, /, **fields: Fields) -> Agent:
        found: Agent = await self._create_one(agent, fields)
        return found

    @c.operation("list_agents")
    def list(self, *, cursor: str | None = None, limit: int | None = None) -> AsyncPager[Agent]:
        pager: AsyncPager[Agent] = self._list(cursor, limit)
        return pager

    @c.operation("get_agent")
    async def get(self, agent_id: Id) -> Agent:
        found: Agent = await self._get(agent_id)
        return found

    @c.operation("update_agent")
    async def update(self, agent_id: Id, change: AgentUpdate | None = None, /, **fields: Fields) -> Agent:
        found: Agent = await self._update_one(agent_id, change, fields)
        return found

    @c.operation("delete_agent")
    async def delete(self, agent_id: Id) -> None:
        await self._delete(agent_id)


class Apps(_Directory):
    _path, _model, _create, _update = "/v1/apps", App, AppCreate, AppUpdate

    @c.operation("create_app")
    async def create(self, app: AppCreate | None = None, /, **fields: Fields) -> App:
        found: App = await self._create_one(app, fields)
        return found

    @c.operation("list_apps")
    def list(self, *, cursor: str | None = None, limit: int | None = None) -> AsyncPager[App]:
        pager: AsyncPager[App] = self._list(cursor, limit)
        return pager

    @c.operation("get_app")
    async def get(self, app_id: Id) -> App:
        found: App = await self._get(app_id)
        return found

    @c.operation("update_app")
    async def update(self, app_id: Id, change: AppUpdate | None = None, /, **fields: Fields) -> App:
        found: App = await self._update_one(app_id, change, fields)
        return found

    @c.operation("delete_app")
    async def delete(self, app_id: Id) -> None:
        await self._delete(app_id)


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
        cursor: str | None = None,
        limit: int | None = None,
    ) -> AsyncPager[Session]:
        params = {
            "user_id": user_id,
            "external_user_id": external_user_id,
            "agent_id": agent_id,
            "app_id": app_id,
            "status": status,
            "tags_any": tags_any,
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
        """Every record of the org (or of one user), one dict per line, header first."""
        params = {"user_id": user_id, "external_user_id": external_user_id, "include_embeddings": include_embeddings}
        response = await self._client.request("GET", "/v1/export", params=params)
        for line in response.text.splitlines():
            if line.strip():
                yield json.loads(line)

    @c.operation("import_data")
    async def import_(self, lines: bytes | Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """Import an export (bytes of JSON Lines, or its records) into the key's organization."""
        content = lines if isinstance(lines, bytes) else "".join(json.dumps(x) + "\n" for x in lines).encode()
        headers = {"Content-Type": "application/x-ndjson"}
        response = await self._client.request("POST", "/v1/import", content=content, headers=headers, idempotent=True)
        found: dict[str, Any] = response.json()
        return found

"""The tools. Each calls the service function its REST route calls, as the caller the API key resolves to.

A tool's docstring is its description and each argument carries one: a model reads them to decide
which tool to call and how, so they say what the tool is for, not only what it does.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from mcp.types import CallToolResult
from pydantic import Field

from engramdb import limits
from engramdb.errors import InvalidRequest, NotFound
from engramdb.mcp.agents import AgentTools
from engramdb.mcp.base import Bound, Ctx, NoSuchUser, Resolver, result, tool_errors, user_filter, user_ref
from engramdb.mcp.contexts import ContextTools
from engramdb.schemas.common import ExternalId, Name, Page, PublicModel, StrictModel, Tag, Timestamp
from engramdb.schemas.context import ContextRequest, ContextResponse
from engramdb.schemas.conversations import MessageBatch, MessageContent, MessageCreate, Role, SessionCreate
from engramdb.schemas.graph import (
    Entity,
    EntityFilters,
    EntityType,
    Fact,
    FactCreate,
    FactFilters,
    FactPart,
    FactResult,
    Neighbourhood,
)
from engramdb.schemas.jobs import Job
from engramdb.schemas.memories import (
    Importance,
    Memory,
    MemoryContent,
    MemoryCreate,
    MemoryFilters,
    MemoryStateChange,
    MemoryType,
)
from engramdb.schemas.search import PathPrefix, Query, SearchFilters, SearchRequest, SearchResponse, SearchType
from engramdb.services.conversation import messages as message_service
from engramdb.services.conversation import sessions
from engramdb.services.core import jobs
from engramdb.services.governance import erase as erasure
from engramdb.services.graph import entities, facts
from engramdb.services.graph import traversal as graph
from engramdb.services.memory import memories
from engramdb.services.search import context as assemble
from engramdb.services.search import hybrid as search_service

# --- arguments shared by several tools -------------------------------------------------------------------

ExternalUser = Annotated[
    ExternalId | None,
    Field(
        description="Your application's id for the user this is about, e.g. 'alice' (a write creates the user "
        "on first use). Leave it out when the API key is bound to a user: the key decides."
    ),
]
UserId = Annotated[uuid.UUID | None, Field(description="Engram's id for the user, instead of external_user_id.")]
SessionId = Annotated[uuid.UUID | None, Field(description="A session (conversation) id, as add_messages returns.")]
Limit = Annotated[int, Field(ge=1, le=limits.MAX_PAGE_SIZE, description="How many to return.")]
Cursor = Annotated[
    str | None, Field(max_length=512, description="The next_cursor of the previous call, for the next page.")
]
TopK = Annotated[int, Field(ge=1, le=limits.MAX_TOP_K, description="How many results to return.")]
SearchQuery = Annotated[Query, Field(description="What to look for, in natural language or keywords.")]
ValidAt = Annotated[
    Timestamp | None, Field(description="Event time (ISO 8601): only what was true at that moment. Default: now.")
]


class ChatMessage(StrictModel):
    """One turn of a conversation."""

    role: Role = Field(description="Who said it: user, assistant, system or tool.")
    content: MessageContent = Field(description="What was said.")
    name: Name | None = Field(default=None, description="The speaker's name, e.g. 'Alice'.")
    occurred_at: Timestamp | None = Field(default=None, description="When it was said (ISO 8601); default now.")


class MessagesStored(PublicModel):
    session_id: uuid.UUID = Field(description="Pass it as session_id to add later turns to the same conversation.")
    message_ids: list[uuid.UUID]
    job: Job | None = Field(description="The background extraction turning the messages into memories and facts.")


class MemoryDeleted(PublicModel):
    id: uuid.UUID
    erased: bool = Field(description="True: gone for good with its history. False: marked deleted (restorable).")


class Tools(AgentTools, ContextTools):
    """The tools of one server; ``resolve`` says who each call runs as (the agents' tools: ``mcp/agents.py``)."""

    def __init__(self, resolve: Resolver) -> None:
        self._resolve = resolve

    async def add_memory(
        self,
        ctx: Ctx,
        content: Annotated[
            MemoryContent,
            Field(description="One self-contained statement, e.g. 'Prefers aisle seats on long flights'."),
        ],
        type: Annotated[
            MemoryType,
            Field(description="fact, preference, task (something to do), procedural (how to do it) or episodic."),
        ] = "fact",
        importance: Annotated[Importance, Field(description="0 to 1; important memories rank higher.")] = 0.5,
        tags: Annotated[list[Tag] | None, Field(max_length=limits.MAX_TAGS, description="Labels.")] = None,
        external_user_id: ExternalUser = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, Memory]:
        """Remember one thing for later conversations: a fact about the user, a preference, a task, a procedure
        or an event, as one self-contained sentence. It can be searched at once. To keep a whole conversation
        (and let Engram draw memories from it), use add_messages instead."""
        with tool_errors():
            bound = await self._resolve(ctx)
            body = MemoryCreate(
                content=content,
                type=type,
                importance=importance,
                tags=tags or [],
                **user_ref(bound.caller, user_id, external_user_id),
            )
            return result(await memories.create(bound.runtime, bound.caller, body))

    async def add_messages(
        self,
        ctx: Ctx,
        messages: Annotated[
            list[ChatMessage],
            Field(
                min_length=1,
                max_length=limits.MAX_MESSAGES_PER_BATCH,
                description="The turns, oldest first.",
            ),
        ],
        session_id: Annotated[
            uuid.UUID | None,
            Field(description="Continue this session (the id an earlier call returned). Leave out to start one."),
        ] = None,
        title: Annotated[Name | None, Field(description="A title for a new session.")] = None,
        wait_for_extraction: Annotated[
            bool, Field(description="Return once the memories and facts are extracted (at most 60 s).")
        ] = False,
        external_user_id: ExternalUser = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, MessagesStored]:
        """Store the turns of a conversation in a session. Without session_id a new session is started for the
        user and its id returned: pass it back to add later turns. The turns can be searched at once; in the
        background Engram draws memories, facts and entities from them and keeps a summary of the session."""
        with tool_errors():
            bound = await self._resolve(ctx)
            rt, caller = bound.runtime, bound.caller
            batch = MessageBatch(
                messages=[MessageCreate.model_validate(m.model_dump(exclude_none=True)) for m in messages]
            )
            if session_id is None:
                new = SessionCreate(title=title, **user_ref(caller, user_id, external_user_id))
                session_id = (await sessions.create(rt.db, caller, new)).id
            elif user_id is not None or external_user_id is not None:
                raise InvalidRequest("a session already belongs to its user: leave out the user with session_id")
            stored, job_id = await message_service.add(rt, caller, session_id, batch)
            job = None
            if job_id is not None and wait_for_extraction:
                job = await jobs.wait(rt.db, caller, job_id, timeout_s=limits.WAIT_TIMEOUT_S)
            elif job_id is not None:
                job = await jobs.get(rt.db, caller, job_id)
            out = MessagesStored(session_id=session_id, message_ids=[m.id for m in stored], job=job)
            return result(out)

    async def search(
        self,
        ctx: Ctx,
        query: SearchQuery,
        types: Annotated[
            list[SearchType] | None,
            Field(
                min_length=1,
                max_length=7,
                description="What to search: memories, messages, facts (the default: all three), entities, "
                "chunks, documents, contexts (what you offloaded with offload_context).",
            ),
        ] = None,
        top_k: TopK = 10,
        session_id: SessionId = None,
        external_user_id: ExternalUser = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, SearchResponse]:
        """Search what Engram remembers (memories, conversation messages and facts) by meaning and keywords,
        best first, each with its id and score. Use it before answering anything that depends on the user's
        past, preferences or earlier conversations."""
        with tool_errors():
            bound = await self._resolve(ctx)
            req = SearchRequest(
                query=query,
                types=types or ["memories", "messages", "facts"],
                top_k=top_k,
                session_id=session_id,
                **user_ref(bound.caller, user_id, external_user_id),
            )
            response, accessed = await search_service.search(bound.runtime, bound.caller, req)
            bound.runtime.access.record(bound.caller, accessed)
            return result(response)

    async def get_context(
        self,
        ctx: Ctx,
        query: Annotated[
            Query | None, Field(description="What you are about to answer: picks the relevant memories and facts.")
        ] = None,
        session_id: SessionId = None,
        token_budget: Annotated[
            int,
            Field(ge=limits.MIN_CONTEXT_TOKENS, le=limits.MAX_CONTEXT_TOKENS, description="At most this many tokens."),
        ] = 1000,
        external_user_id: ExternalUser = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, ContextResponse]:
        """A prompt-ready block of what Engram knows for the next answer: the session's summary, the facts true
        now, the memories most relevant to the query and the recent messages, each line citing its id, within
        token_budget. Name a session or a user (a user-bound key names its own)."""
        with tool_errors():
            bound = await self._resolve(ctx)
            req = ContextRequest(
                query=query,
                session_id=session_id,
                token_budget=token_budget,
                **user_ref(bound.caller, user_id, external_user_id),
            )
            response = await assemble.assemble(bound.runtime, bound.caller, req)
            return result(response, text=response.context)

    async def list_memories(
        self,
        ctx: Ctx,
        type: Annotated[MemoryType | None, Field(description="Only memories of this type.")] = None,
        tags_any: Annotated[
            list[Tag] | None, Field(max_length=limits.MAX_TAGS, description="Only memories with any of these tags.")
        ] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
        external_user_id: ExternalUser = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, Page[Memory]]:
        """List stored memories, newest first (deleted ones left out), to review them or find one to delete.
        To find memories about something, use search."""
        with tool_errors():
            bound = await self._resolve(ctx)
            filters = MemoryFilters(
                type=type,
                tags_any=tags_any,
                user_id=user_id,
                external_user_id=external_user_id,
                cursor=cursor,
                limit=limit,
            )
            page = await memories.list_memories(bound.runtime.db, bound.caller, filters)
            return result(page)

    async def delete_memory(
        self,
        ctx: Ctx,
        memory_id: Annotated[uuid.UUID, Field(description="The memory's id, from search or list_memories.")],
        erase: Annotated[
            bool, Field(description="Remove it and its history for good, instead of marking it deleted.")
        ] = False,
    ) -> Annotated[CallToolResult, MemoryDeleted]:
        """Forget a memory that is wrong or no longer wanted. It is marked deleted and no longer found (it can
        be restored through the API); erase=true removes it and its history for good."""
        with tool_errors():
            bound = await self._resolve(ctx)
            if erase:
                await erasure.memory(bound.runtime, bound.caller, memory_id)
            else:
                await memories.change_state(
                    bound.runtime.db, bound.caller, memory_id, MemoryStateChange(state="deleted", reason="mcp")
                )
            return result(MemoryDeleted(id=memory_id, erased=erase))

    async def add_fact(
        self,
        ctx: Ctx,
        subject: Annotated[FactPart, Field(description="Who or what the fact is about, e.g. 'Alice'.")],
        predicate: Annotated[
            str,
            Field(max_length=100, description="The relation, a short verb phrase in snake_case: lives_in, works_at."),
        ],
        object: Annotated[FactPart, Field(description="The value or the other party, e.g. 'Lisbon'.")],
        object_is_entity: Annotated[
            bool, Field(description="The object is a person, place or thing too: the fact joins the graph.")
        ] = False,
        single_valued: Annotated[
            bool | None,
            Field(
                description="The subject has one object for this predicate at a time (lives_in): a new fact "
                "closes the old one's validity instead of adding a second. Leave it out to follow the "
                "organization's predicate catalogue (lives_in, works_at … are single-valued)."
            ),
        ] = None,
        subject_type: Annotated[EntityType, Field(description="What kind of thing the subject is.")] = "other",
        object_type: Annotated[EntityType, Field(description="With object_is_entity: the object's kind.")] = "other",
        valid_from: Annotated[Timestamp | None, Field(description="When it became true (ISO 8601).")] = None,
        valid_until: Annotated[Timestamp | None, Field(description="When it stopped being true, if it has.")] = None,
        external_user_id: ExternalUser = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, FactResult]:
        """Record a fact as a subject–predicate–object triple, e.g. (Alice, lives_in, Lisbon). Facts are
        bi-temporal: valid_from and valid_until say when it was true, and a contradicting fact closes the old
        one instead of erasing it, so what was true at any time stays answerable (see query_facts). Returns
        ADD, NOOP (already known) or INVALIDATE (it replaced older facts)."""
        with tool_errors():
            bound = await self._resolve(ctx)
            body = FactCreate(
                subject=subject,
                predicate=predicate,
                object=object,
                object_is_entity=object_is_entity,
                single_valued=single_valued,
                subject_type=subject_type,
                object_type=object_type,
                valid_from=valid_from,
                valid_until=valid_until,
                **user_ref(bound.caller, user_id, external_user_id),
            )
            return result(await facts.create(bound.runtime, bound.caller, body))

    async def query_facts(
        self,
        ctx: Ctx,
        subject: Annotated[str | None, Field(description="An entity's name or alias, e.g. 'Alice'.")] = None,
        predicate: Annotated[str | None, Field(description="The relation, e.g. lives_in.")] = None,
        valid_at: ValidAt = None,
        known_at: Annotated[
            Timestamp | None, Field(description="System time (ISO 8601): what Engram believed then. Default: now.")
        ] = None,
        include_history: Annotated[
            bool, Field(description="Every version, superseded and no longer valid ones too.")
        ] = False,
        limit: Limit = 20,
        cursor: Cursor = None,
        external_user_id: ExternalUser = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, Page[Fact]]:
        """Look up facts by subject and/or predicate, newest first: what is believed true now, or, with
        valid_at, what was true at a given time (where did Alice live in 2020?). Each fact has a statement and
        its validity (valid_from, valid_until)."""
        with tool_errors():
            bound = await self._resolve(ctx)
            try:
                owner = await user_filter(bound, user_id, external_user_id)
            except NoSuchUser:
                return result(Page[Fact](data=[]))
            q = FactFilters(
                subject=subject,
                predicate=predicate,
                user_id=owner,
                valid_at=valid_at,
                known_at=known_at,
                include_history=include_history,
                cursor=cursor,
                limit=limit,
            )
            return result(await facts.list_facts(bound.runtime, bound.caller, q))

    async def graph_neighbors(
        self,
        ctx: Ctx,
        entity: Annotated[str, Field(min_length=1, description="The entity's name or alias (or its id).")],
        depth: Annotated[int, Field(ge=1, le=limits.MAX_GRAPH_DEPTH, description="How many hops to go.")] = 1,
        valid_at: ValidAt = None,
        external_user_id: ExternalUser = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, Neighbourhood]:
        """Explore the knowledge graph around a person, place, organization or thing: the entities within
        `depth` hops of it and the facts that link them (who works with whom, what is where)."""
        with tool_errors():
            bound = await self._resolve(ctx)
            try:
                owner = await user_filter(bound, user_id, external_user_id)
            except NoSuchUser as exc:
                raise NotFound(f"no user with external_user_id {str(exc)!r}") from exc
            entity_id = await self._entity(bound, entity, owner)
            hood = await graph.neighbours(bound.runtime, bound.caller, entity_id, depth=depth, valid_at=valid_at)
            return result(hood)

    async def search_documents(
        self,
        ctx: Ctx,
        query: SearchQuery,
        top_k: TopK = 5,
        repository_id: Annotated[uuid.UUID | None, Field(description="Only documents of this repository.")] = None,
        path_prefix: Annotated[
            PathPrefix | None, Field(description="Only documents whose path starts so, e.g. 'docs/'.")
        ] = None,
        external_user_id: ExternalUser = None,
        user_id: UserId = None,
    ) -> Annotated[CallToolResult, SearchResponse]:
        """Search the documents stored in Engram (synced folders and repositories, uploaded notes, articles,
        code, PDFs): the best matching passages, each with a citation (file, section, lines or page) to quote
        or to point the user to."""
        with tool_errors():
            bound = await self._resolve(ctx)
            req = SearchRequest(
                query=query,
                types=["chunks"],
                top_k=top_k,
                filters=SearchFilters(repository_id=repository_id, path_prefix=path_prefix),
                **user_ref(bound.caller, user_id, external_user_id),
            )
            response, accessed = await search_service.search(bound.runtime, bound.caller, req)
            bound.runtime.access.record(bound.caller, accessed)
            return result(response)

    async def _entity(self, bound: Bound, ref: str, owner: uuid.UUID | None) -> uuid.UUID:
        """An entity by id, or by name or alias: an exact match, else the only partial one."""
        try:
            return uuid.UUID(ref)
        except ValueError:
            pass
        listed: list[Entity] = []
        if len(ref) <= limits.MAX_NAME_CHARS:  # names and aliases are no longer, so a longer ref names none
            filters = EntityFilters(user_id=owner, q=ref, limit=20)
            listed = (await entities.list_entities(bound.runtime, bound.caller, filters)).data
        key = entities.normalize(ref)
        exact = [e for e in listed if key in {entities.normalize(n) for n in (e.name, *e.aliases)}]
        found = exact or listed
        if not found:
            raise NotFound(f"no entity is named {ref!r}; search with types ['entities'] to find its name")
        if len(found) > 1:
            raise InvalidRequest(f"{ref!r} names several entities; pass one's id: {_listing(found)}")
        return found[0].id


def _listing(found: list[Entity]) -> str:
    return "; ".join(f"{e.name} ({e.type}, id {e.id}, user {e.user_id or 'none'})" for e in found[:10])


ToolKind = Literal["read", "write", "delete"]
# Each tool in the order clients list them, and what it does to the store (for the tool annotations).
CATALOGUE: tuple[tuple[str, ToolKind], ...] = (
    ("search", "read"),
    ("get_context", "read"),
    ("add_memory", "write"),
    ("add_messages", "write"),
    ("list_memories", "read"),
    ("delete_memory", "delete"),
    ("add_fact", "write"),
    ("query_facts", "read"),
    ("graph_neighbors", "read"),
    ("search_documents", "read"),
    ("offload_context", "write"),
    ("restore_context", "read"),
    ("heartbeat", "write"),
    ("claim_task", "write"),
    ("update_task", "write"),
    ("complete_task", "write"),
    ("send_message", "write"),
    ("read_inbox", "write"),
)

"""Sessions and their messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from engramdb import limits
from engramdb.api.deps import CallerDep, CursorQ, DbDep, LimitQ, RuntimeDep
from engramdb.api.params import MetadataQ, TagsQ, json_object
from engramdb.schemas.common import Page
from engramdb.schemas.conversations import (
    Message,
    MessageBatch,
    MessageFilters,
    MessagesAdded,
    Role,
    Session,
    SessionCreate,
    SessionFilters,
    SessionUpdate,
)
from engramdb.services.conversation import messages, sessions
from engramdb.services.core import jobs
from engramdb.services.governance import erase

router = APIRouter(tags=["sessions"])


@router.post(
    "/sessions",
    status_code=201,
    response_model=Session,
    operation_id="create_session",
    summary="Start a session (conversation)",
)
async def create_session(body: SessionCreate, db: DbDep, caller: CallerDep) -> Session:
    return await sessions.create(db, caller, body)


@router.get("/sessions", response_model=Page[Session], operation_id="list_sessions", summary="List sessions")
async def list_sessions(
    db: DbDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    user_id: uuid.UUID | None = None,
    external_user_id: str | None = None,
    agent_id: uuid.UUID | None = None,
    app_id: uuid.UUID | None = None,
    status: Literal["active", "closed"] | None = None,
    tags_any: TagsQ = None,
    metadata: MetadataQ = None,
) -> Page[Session]:
    filters = SessionFilters(
        user_id=user_id,
        external_user_id=external_user_id,
        agent_id=agent_id,
        app_id=app_id,
        status=status,
        tags_any=tags_any,
        metadata=json_object(metadata, "metadata"),
    )
    return await sessions.list_sessions(db, caller, filters, cursor=cursor, limit=limit)


@router.get("/sessions/{session_id}", response_model=Session, operation_id="get_session", summary="Get a session")
async def get_session(session_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Session:
    return await sessions.get(db, caller, session_id)


@router.patch(
    "/sessions/{session_id}",
    response_model=Session,
    operation_id="update_session",
    summary="Update a session's title, tags or metadata",
)
async def update_session(session_id: uuid.UUID, body: SessionUpdate, db: DbDep, caller: CallerDep) -> Session:
    return await sessions.update_session(db, caller, session_id, body)


@router.post(
    "/sessions/{session_id}/close",
    response_model=Session,
    operation_id="close_session",
    summary="Close a session (no new messages)",
)
async def close_session(session_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Session:
    return await sessions.close(db, caller, session_id)


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    operation_id="delete_session",
    summary="Delete a session and its messages",
)
async def delete_session(session_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Response:
    await erase.session(db, caller, session_id)
    return Response(status_code=204)


@router.post(
    "/sessions/{session_id}/messages",
    status_code=201,
    response_model=MessagesAdded,
    operation_id="add_messages",
    summary="Append a batch of messages to a session",
)
async def add_messages(
    session_id: uuid.UUID,
    body: MessageBatch,
    rt: RuntimeDep,
    caller: CallerDep,
    wait: Annotated[
        bool,
        Query(description="Return once the extraction job has finished (at most 60 s; then as it stands)."),
    ] = False,
) -> MessagesAdded:
    stored, job_id = await messages.add(rt, caller, session_id, body)
    job = None
    if job_id is not None:
        if wait:
            job = await jobs.wait(rt.db, caller, job_id, timeout_s=limits.WAIT_TIMEOUT_S)
        else:
            job = await jobs.get(rt.db, caller, job_id)
    return MessagesAdded(data=stored, job=job)


@router.get(
    "/sessions/{session_id}/messages",
    response_model=Page[Message],
    operation_id="list_messages",
    summary="List a session's messages in time order",
)
async def list_messages(
    session_id: uuid.UUID,
    db: DbDep,
    caller: CallerDep,
    cursor: CursorQ = None,
    limit: LimitQ = limits.DEFAULT_PAGE_SIZE,
    role: Role | None = None,
    tags_any: TagsQ = None,
    tags_all: TagsQ = None,
    occurred_after: datetime | None = None,
    occurred_before: datetime | None = None,
    metadata: MetadataQ = None,
    order: Literal["asc", "desc"] = "asc",
) -> Page[Message]:
    filters = MessageFilters(
        role=role,
        tags_any=tags_any,
        tags_all=tags_all,
        occurred_after=occurred_after,
        occurred_before=occurred_before,
        metadata=json_object(metadata, "metadata"),
        order=order,
    )
    return await messages.list_messages(db, caller, session_id, filters, cursor=cursor, limit=limit)


@router.get("/messages/{message_id}", response_model=Message, operation_id="get_message", summary="Get a message")
async def get_message(message_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Message:
    return await messages.get(db, caller, message_id)

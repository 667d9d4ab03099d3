"""Sessions and their messages."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from engramdb import limits
from engramdb.api.deps import CallerDep, DbDep, RuntimeDep
from engramdb.schemas.common import Page
from engramdb.schemas.conversations import (
    Message,
    MessageBatch,
    MessageFilters,
    MessagesAdded,
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
async def list_sessions(filters: Annotated[SessionFilters, Query()], db: DbDep, caller: CallerDep) -> Page[Session]:
    return await sessions.list_sessions(db, caller, filters)


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
    session_id: uuid.UUID, filters: Annotated[MessageFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[Message]:
    return await messages.list_messages(db, caller, session_id, filters)


@router.get("/messages/{message_id}", response_model=Message, operation_id="get_message", summary="Get a message")
async def get_message(message_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Message:
    return await messages.get(db, caller, message_id)

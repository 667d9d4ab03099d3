"""Federated insights: sessions (open, read, close), joining and leaving them, releases under differential
privacy, and a participant's own record (docs/insights.md)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from engramdb.api.deps import CallerDep, DbDep
from engramdb.schemas.common import Page, PageQuery
from engramdb.schemas.insights import (
    Contribution,
    Insight,
    InsightSession,
    InsightSessionCreate,
    InsightSessionFilters,
    Participation,
    ParticipationCreate,
    ParticipationFilters,
)
from engramdb.services.insights import participants, sessions

router = APIRouter(prefix="/insights", tags=["insights"])


@router.post(
    "/sessions",
    status_code=201,
    response_model=InsightSession,
    operation_id="create_insight_session",
    summary="Open a federated insight session and invite organizations to it (admin)",
)
async def create_insight_session(body: InsightSessionCreate, db: DbDep, caller: CallerDep) -> InsightSession:
    return await sessions.create(db, caller, body)


@router.get(
    "/sessions",
    response_model=Page[InsightSession],
    operation_id="list_insight_sessions",
    summary="List the sessions your organization opened or is invited to",
)
async def list_insight_sessions(
    filters: Annotated[InsightSessionFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[InsightSession]:
    return await sessions.list_sessions(db, caller, filters)


@router.get(
    "/sessions/{session_id}",
    response_model=InsightSession,
    operation_id="get_insight_session",
    summary="Get a session (its owner, its participants and invitees only)",
)
async def get_insight_session(session_id: uuid.UUID, db: DbDep, caller: CallerDep) -> InsightSession:
    return await sessions.get(db, caller, session_id)


@router.post(
    "/sessions/{session_id}/close",
    response_model=InsightSession,
    operation_id="close_insight_session",
    summary="Close a session: no more joins or releases (its owner, admin)",
)
async def close_insight_session(session_id: uuid.UUID, db: DbDep, caller: CallerDep) -> InsightSession:
    return await sessions.close(db, caller, session_id)


@router.post(
    "/sessions/{session_id}/join",
    status_code=201,
    response_model=Participation,
    operation_id="join_insight_session",
    summary="Join a session you are invited to, with a privacy budget (admin; a federated organization or team)",
)
async def join_insight_session(
    session_id: uuid.UUID, body: ParticipationCreate, db: DbDep, caller: CallerDep
) -> Participation:
    return await participants.join(db, caller, session_id, body)


@router.post(
    "/sessions/{session_id}/leave",
    response_model=InsightSession,
    operation_id="leave_insight_session",
    summary="Leave a session: later releases leave your data out (admin)",
)
async def leave_insight_session(session_id: uuid.UUID, db: DbDep, caller: CallerDep) -> InsightSession:
    return await participants.leave(db, caller, session_id)


@router.post(
    "/sessions/{session_id}/release",
    status_code=201,
    response_model=Insight,
    operation_id="release_insight",
    summary="Release the session's histogram with differential privacy, spending each participant's budget",
)
async def release_insight(session_id: uuid.UUID, db: DbDep, caller: CallerDep) -> Insight:
    return await sessions.release(db, caller, session_id)


@router.get(
    "/sessions/{session_id}/insights",
    response_model=Page[Insight],
    operation_id="list_insights",
    summary="List a session's released insights (its owner and participants)",
)
async def list_insights(
    session_id: uuid.UUID, filters: Annotated[PageQuery, Query()], db: DbDep, caller: CallerDep
) -> Page[Insight]:
    return await sessions.list_insights(db, caller, session_id, filters)


@router.get(
    "/participations",
    response_model=Page[Participation],
    operation_id="list_participations",
    summary="Your participations, with the budget each spent (yours alone)",
)
async def list_participations(
    filters: Annotated[ParticipationFilters, Query()], db: DbDep, caller: CallerDep
) -> Page[Participation]:
    return await participants.list_participations(db, caller, filters)


@router.get(
    "/participations/{participation_id}/contributions",
    response_model=Page[Contribution],
    operation_id="list_contributions",
    summary="The releases a participation of yours was counted in (yours alone)",
)
async def list_contributions(
    participation_id: uuid.UUID, filters: Annotated[PageQuery, Query()], db: DbDep, caller: CallerDep
) -> Page[Contribution]:
    return await participants.list_contributions(db, caller, participation_id, filters)

"""User narratives (profiles distilled from facts and memories)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from engramdb import limits
from engramdb.api.deps import CallerDep, RuntimeDep
from engramdb.schemas.common import Page
from engramdb.schemas.jobs import Job
from engramdb.schemas.narratives import Narrative, NarrativeFilters
from engramdb.services.core import jobs
from engramdb.services.distill import narratives

narratives_router = APIRouter(tags=["narratives"])


@narratives_router.post(
    "/users/{user_id}/narrative",
    status_code=202,
    response_model=Job,
    operation_id="refresh_user_narrative",
    summary="Queue a rewrite of the user's narrative",
)
async def refresh_user_narrative(
    user_id: uuid.UUID,
    rt: RuntimeDep,
    caller: CallerDep,
    wait: Annotated[bool, Query(description="Return once the job has finished (at most 60 s).")] = False,
) -> Job:
    job = await narratives.request(rt, caller, user_id)
    return await jobs.wait(rt.db, caller, job.id, timeout_s=limits.WAIT_TIMEOUT_S) if wait else job


@narratives_router.get(
    "/users/{user_id}/narrative",
    response_model=Narrative,
    operation_id="get_user_narrative",
    summary="The latest narrative",
)
async def get_user_narrative(user_id: uuid.UUID, rt: RuntimeDep, caller: CallerDep) -> Narrative:
    return await narratives.latest(rt, caller, user_id)


@narratives_router.get(
    "/users/{user_id}/narratives",
    response_model=Page[Narrative],
    operation_id="list_user_narratives",
    summary="Every version of the user's narrative",
)
async def list_user_narratives(
    user_id: uuid.UUID, filters: Annotated[NarrativeFilters, Query()], rt: RuntimeDep, caller: CallerDep
) -> Page[Narrative]:
    return await narratives.versions(rt, caller, user_id, filters)

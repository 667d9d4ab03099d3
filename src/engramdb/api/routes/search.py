from __future__ import annotations

from fastapi import APIRouter

from engramdb.api.deps import CallerDep, RuntimeDep
from engramdb.schemas.search import SearchRequest, SearchResponse
from engramdb.services.search import hybrid as search_service

router = APIRouter(tags=["search"])


@router.post(
    "/search", response_model=SearchResponse, operation_id="search", summary="Hybrid search over messages and memories"
)
async def search(body: SearchRequest, rt: RuntimeDep, caller: CallerDep) -> SearchResponse:
    response, accessed = await search_service.search(rt, caller, body)
    rt.access.record(caller, accessed)
    return response

"""Hybrid search, and context assembled within a token budget."""

from __future__ import annotations

from fastapi import APIRouter

from engramdb.api.deps import CallerDep, RuntimeDep
from engramdb.schemas.context import ContextRequest, ContextResponse
from engramdb.schemas.search import SearchRequest, SearchResponse
from engramdb.services.search import context as assemble
from engramdb.services.search import hybrid as search_service

search_router = APIRouter(tags=["search"])
context_router = APIRouter(tags=["context"])


@search_router.post(
    "/search", response_model=SearchResponse, operation_id="search", summary="Hybrid search over messages and memories"
)
async def search(body: SearchRequest, rt: RuntimeDep, caller: CallerDep) -> SearchResponse:
    response, accessed = await search_service.search(rt, caller, body)
    rt.access.record(caller, accessed)
    return response


@context_router.post(
    "/context", response_model=ContextResponse, operation_id="assemble_context", summary="A prompt-ready context block"
)
async def assemble_context(body: ContextRequest, rt: RuntimeDep, caller: CallerDep) -> ContextResponse:
    return await assemble.assemble(rt, caller, body)

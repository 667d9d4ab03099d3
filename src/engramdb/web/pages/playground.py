"""The search playground (a query, the types, the mode: every result with the parts of its score) and the
context playground (the block an agent would get, within its budget, each citation linked to its source).

Both are reads asked with GET, so a result can be bookmarked and needs no CSRF token. A playground search
is not recorded in the memories' access log (the API's search is): looking at why a memory ranks should
not change its ranking, which its last access feeds through decay.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field
from starlette.responses import Response

from engramdb import limits
from engramdb.schemas.common import ExternalId, StrictModel
from engramdb.schemas.context import ContextRequest, Section, _all_sections
from engramdb.schemas.search import Query, SearchMode, SearchRequest, SearchType, _default_types
from engramdb.services.search import context as assemble
from engramdb.services.search import hybrid
from engramdb.web.view import Pages, View

pages = Pages()


class SearchForm(StrictModel):
    """The playground's query string: the parts of a ``SearchRequest`` a person sets by hand."""

    query: Query | None = None
    types: list[SearchType] = Field(default_factory=_default_types)
    mode: SearchMode = "hybrid"
    top_k: int = Field(default=10, ge=1, le=limits.MAX_TOP_K)
    user_id: uuid.UUID | None = None
    external_user_id: ExternalId | None = None
    session_id: uuid.UUID | None = None


class ContextForm(StrictModel):
    query: Query | None = None
    user_id: uuid.UUID | None = None
    external_user_id: ExternalId | None = None
    session_id: uuid.UUID | None = None
    token_budget: int = Field(default=1_000, ge=limits.MIN_CONTEXT_TOKENS, le=limits.MAX_CONTEXT_TOKENS)
    sections: list[Section] = Field(default_factory=_all_sections)


# Where each kind of result is shown in full.
def _link(result: Any) -> str | None:
    kinds = {"message": "messages", "memory": "memories", "fact": "facts", "entity": "entities"}
    if result.type in kinds:
        return f"/ui/{kinds[result.type]}/{result.id}"
    if result.document_id is not None:
        return f"/ui/documents/{result.document_id}"
    return None


@pages.get("/search")
async def search(view: View) -> Response:
    form = view.query(SearchForm)
    results = None
    if form.query is not None:
        request = SearchRequest.model_validate({**form.model_dump(exclude_none=True), "explain": True})
        response, _accessed = await hybrid.search(view.rt, view.caller, request)
        results = [(result, _link(result)) for result in response.results]
    return view.render("search.html", form=form, results=results)


@pages.get("/context")
async def context(view: View) -> Response:
    form = view.query(ContextForm)
    block = None
    if form.user_id or form.external_user_id or form.session_id:
        request = ContextRequest.model_validate(form.model_dump(exclude_none=True))
        block = await assemble.assemble(view.rt, view.caller, request)
    links = {
        "summary": "sessions",
        "fact": "facts",
        "memory": "memories",
        "message": "messages",
    }
    return view.render("context.html", form=form, block=block, links=links)

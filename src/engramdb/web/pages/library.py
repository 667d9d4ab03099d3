"""Documents and repositories: the list, and a document's chunks with the citation of each."""

from __future__ import annotations

from starlette.responses import Response

from engramdb.schemas.documents import DocumentChunkFilters, DocumentFilters, RepositoryFilters
from engramdb.services.document import documents, repositories
from engramdb.web.view import Pages, View

pages = Pages()


@pages.get("/documents")
async def document_list(view: View) -> Response:
    filters = view.query(DocumentFilters)
    db, caller = view.rt.db, view.caller
    page = await documents.list_documents(db, caller, filters)
    collections = await repositories.list_repositories(db, caller, RepositoryFilters(limit=20))
    return view.render(
        "documents.html",
        page=page,
        filters=filters,
        repositories=collections,
        next_href=view.next_href(page.next_cursor),
    )


@pages.get("/documents/{document_id:uuid}")
async def document(view: View) -> Response:
    document_id = view.path_id("document_id")
    db, caller = view.rt.db, view.caller
    found = await documents.get(db, caller, document_id, include_content=False)
    chunks = await documents.list_chunks(db, caller, document_id, view.query(DocumentChunkFilters))
    return view.render("document.html", document=found, chunks=chunks, next_href=view.next_href(chunks.next_cursor))

"""Chunks and documents in /v1/search: found by meaning and by keyword, cited, filtered, fused and confined.

The documents API is not used here: documents and chunks are written straight into the tables (as the
owner), with vectors from the session's embedder, as ingestion stores them.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from engramdb.config import Settings
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.schemas.search import SearchRequest
from engramdb.services.core.runtime import Runtime
from engramdb.services.search import hybrid as search
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database
from tests.conftest import Org, assert_problem, client_for


@dataclass
class Piece:
    content: str
    heading_path: list[str] = field(default_factory=list)
    start_line: int | None = None
    end_line: int | None = None
    page: int | None = None


def _hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _repository(database_url: str, org: Org, name: str) -> str:
    repository_id = uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO repository (org_id, id, name) VALUES (%s, %s, %s)", (org.id, repository_id, name))
    return str(repository_id)


async def _document(
    database_url: str,
    embedder: MiniLMEmbedder,
    org: Org,
    pieces: list[Piece],
    *,
    path: str | None = None,
    title: str | None = None,
    content_type: str = "text/markdown",
    repository_id: str | None = None,
    user_id: str | None = None,
    tags: tuple[str, ...] = (),
    metadata: dict[str, object] | None = None,
) -> str:
    document_id = uuid.uuid4()
    text = "\n\n".join(p.content for p in pieces)
    vectors = await embedder.embed_batch([p.content for p in pieces], kind="passage")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO document (org_id, id, repository_id, path, title, content_type, user_id, tags, metadata,"
            " content, content_hash, size_bytes, chunk_count)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                org.id,
                document_id,
                repository_id,
                path,
                title,
                content_type,
                user_id,
                list(tags),
                Jsonb(metadata or {}),
                text,
                _hash(text),
                len(text.encode()),
                len(pieces),
            ),
        )
        start = 0
        for ordinal, (piece, vector) in enumerate(zip(pieces, vectors, strict=True)):
            conn.execute(
                "INSERT INTO chunk (org_id, id, document_id, repository_id, user_id, ordinal, content, content_hash,"
                " heading_path, heading, start_line, end_line, page, char_start, char_end, embedding,"
                " embedding_model, language)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::vector, %s, 'english')",
                (
                    org.id,
                    uuid.uuid4(),
                    document_id,
                    repository_id,
                    user_id,
                    ordinal,
                    piece.content,
                    _hash(piece.content),
                    piece.heading_path,
                    piece.heading_path[-1] if piece.heading_path else "",
                    piece.start_line,
                    piece.end_line,
                    piece.page,
                    start,
                    start + len(piece.content),
                    "[" + ",".join(repr(x) for x in vector) + "]",
                    embedder.model,
                ),
            )
            start += len(piece.content) + 2
    return str(document_id)


INSTALL = Piece(
    "Clone the repository, then run make install. Building needs Python 3.12 and a C compiler.",
    ["Install", "From source"],
    12,
    30,
)
SERVE = Piece("Start the server with engramdb serve; clients connect on port 8080.", ["Usage"], 31, 44)
HELM = Piece("The Helm chart deploys the API server and one worker; set replicas in values.yaml.", ["Kubernetes"], 1, 9)
REVENUE = Piece("Quarterly revenue grew by twelve percent, driven by subscriptions sold in Europe.", [], 40, 41, 3)


@dataclass
class Library:
    handbook: str  # repository
    readme: str
    deploy: str
    report: str


async def _library(database_url: str, embedder: MiniLMEmbedder, org: Org) -> Library:
    """A handbook repository (README.md, docs/deploy.md) and a PDF report outside it, tagged finance."""
    handbook = _repository(database_url, org, "handbook")
    docs = ("docs",)
    readme = await _document(
        database_url, embedder, org, [INSTALL, SERVE], path="README.md", repository_id=handbook, tags=docs
    )
    deploy = await _document(
        database_url, embedder, org, [HELM], path="docs/deploy.md", title="Deploying", repository_id=handbook, tags=docs
    )
    report = await _document(
        database_url,
        embedder,
        org,
        [REVENUE],
        path="report.pdf",
        title="Q3 report",
        content_type="application/pdf",
        tags=("finance",),
        metadata={"quarter": 3},
    )
    return Library(handbook, readme, deploy, report)


async def _search(client: httpx.AsyncClient, **body: object) -> list[dict]:  # type: ignore[type-arg]
    r = await client.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()["results"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
async def test_a_chunk_that_answers_the_question_is_found_with_its_citation(
    org: Org, database_url: str, embedder: MiniLMEmbedder, mode: str
) -> None:
    lib = await _library(database_url, embedder, org)
    query = "C compiler" if mode == "keyword" else "what do I need to build it from source?"
    results = await _search(org.client, query=query, mode=mode, types=["chunks"], explain=True)
    top = results[0]
    assert top["type"] == "chunk" and top["content"] == INSTALL.content
    assert top["citation"] == "README.md, section Install › From source, lines 12–30"
    assert (top["document_id"], top["repository_id"], top["path"], top["title"]) == (
        lib.readme,
        lib.handbook,
        "README.md",
        None,
    )
    assert (top["heading_path"], top["start_line"], top["end_line"], top["page"]) == (
        ["Install", "From source"],
        12,
        30,
        None,
    )
    assert top["content_type"] == "text/markdown" and top["tags"] == ["docs"] and top["session_id"] is None
    e = top["explanation"]
    if mode == "keyword":
        assert e["keyword_rank"] == 1 and e["vector_rank"] is None
    else:
        assert e["vector_rank"] == 1 and e["vector_method"] == "exact" and 0 < e["vector_similarity"] <= 1
    assert e["final"] == pytest.approx(top["score"])
    pdf = await _search(org.client, query="how much did sales grow?", mode=mode, types=["chunks"], top_k=1)
    if mode != "keyword":  # no word in common
        assert pdf[0]["citation"] == "report.pdf, page 3" and pdf[0]["metadata"] == {"quarter": 3}


async def test_documents_are_their_best_chunk(org: Org, database_url: str, embedder: MiniLMEmbedder) -> None:
    lib = await _library(database_url, embedder, org)
    results = await _search(org.client, query="install and start the server", types=["documents"], explain=True)
    assert [r["type"] for r in results] == ["document"] * len(results)
    assert len({r["id"] for r in results}) == len(results)  # one hit per document, not per chunk
    readme = next(r for r in results if r["id"] == lib.readme)
    assert readme["document_id"] == lib.readme and readme["content"] == "README.md"  # no title: the path
    assert readme["citation"] in {
        "README.md, section Install › From source, lines 12–30",
        "README.md, section Usage, lines 31–44",
    }
    helm = await _search(org.client, query="helm chart replicas", types=["documents"], top_k=1)
    assert (helm[0]["id"], helm[0]["content"]) == (lib.deploy, "Deploying")
    assert helm[0]["citation"] == "docs/deploy.md, section Kubernetes, lines 1–9"
    both = await _search(org.client, query="helm chart replicas", types=["chunks", "documents"], top_k=2)
    assert {r["type"] for r in both} == {"chunk", "document"} and {r["document_id"] for r in both} == {lib.deploy}


async def test_one_call_mixes_messages_memories_and_chunks(
    org: Org, database_url: str, embedder: MiniLMEmbedder
) -> None:
    await _library(database_url, embedder, org)
    s = (await org.client.post("/v1/sessions", json={"external_user_id": "dev"})).json()
    turn = {"role": "user", "content": "I could not install it from source, the C compiler was missing"}
    assert (await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": [turn]})).status_code == 201
    memory = {"content": "The user builds Engram from source on Linux"}
    assert (await org.client.post("/v1/memories", json=memory)).status_code == 201

    types = ["messages", "memories", "chunks"]
    results = await _search(
        org.client, query="install from source with a C compiler", types=types, top_k=20, explain=True
    )
    assert {r["type"] for r in results} == {"message", "memory", "chunk"}
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    for r in results:
        assert r["explanation"]["final"] == pytest.approx(r["score"])
        assert (r["citation"] is None) == (r["type"] != "chunk")
    # The default is still messages and memories only.
    assert {r["type"] for r in await _search(org.client, query="install from source")} == {"message", "memory"}


async def test_filters_by_repository_path_content_type_and_tags(
    org: Org, database_url: str, embedder: MiniLMEmbedder
) -> None:
    lib = await _library(database_url, embedder, org)
    other = _repository(database_url, org, "elsewhere")
    await _document(database_url, embedder, org, [HELM], path="docs/helm.md", repository_id=other)

    async def documents(**filters: object) -> set[str]:
        body = {"query": "server", "types": ["chunks"], "top_k": 50, "filters": filters}
        return {r["document_id"] for r in await _search(org.client, **body)}

    everything = await documents()
    assert {lib.readme, lib.deploy, lib.report} <= everything and len(everything) == 4
    assert await documents(repository_id=lib.handbook) == {lib.readme, lib.deploy}
    assert len(await documents(repository_id=[lib.handbook, other])) == 3
    assert await documents(path_prefix="docs/", repository_id=lib.handbook) == {lib.deploy}
    assert await documents(path_prefix="docs_") == set()  # a prefix, not a LIKE pattern
    assert await documents(content_types=["application/pdf"]) == {lib.report}
    assert await documents(tags_any=["finance"]) == {lib.report}
    assert await documents(tags_all=["docs"], path_prefix="README") == {lib.readme}
    assert await documents(metadata={"quarter": 3}) == {lib.report}
    assert await documents(created_after="2999-01-01T00:00:00Z") == set()
    # Filters of other types are ignored here; these are ignored by the other types.
    assert await documents(role=["user"], memory_types=["task"]) == everything
    s = (await org.client.post("/v1/sessions", json={"external_user_id": "ops"})).json()
    turn = {"role": "user", "content": "the server went down overnight"}
    await org.client.post(f"/v1/sessions/{s['id']}/messages", json={"messages": [turn]})
    body = {"query": "server", "types": ["messages"], "filters": {"repository_id": lib.handbook, "path_prefix": "x"}}
    assert [r["type"] for r in await _search(org.client, **body)] == ["message"]


async def test_another_org_and_other_users_never_see_the_documents(  # type: ignore[no-untyped-def]
    app, make_org, org: Org, database_url: str, embedder: MiniLMEmbedder
) -> None:
    lib = await _library(database_url, embedder, org)
    stranger: Org = await make_org()
    body = {"query": "what do I need to build it from source?", "types": ["chunks", "documents"]}
    assert await _search(stranger.client, **body) == []
    assert await _search(stranger.client, **body, filters={"repository_id": lib.handbook}) == []

    alice = (await org.client.post("/v1/users", json={"external_id": "alice"})).json()["id"]
    bob = (await org.client.post("/v1/users", json={"external_id": "bob"})).json()["id"]
    mine = await _document(database_url, embedder, org, [INSTALL], path="alice.md", user_id=alice)
    await _document(database_url, embedder, org, [INSTALL], path="bob.md", user_id=bob)
    key = (await org.client.post("/v1/keys", json={"name": "alice", "user_id": alice})).json()["api_key"]
    async with client_for(app, key) as bound:
        found = await _search(bound, **body, top_k=50)
        assert {r["document_id"] for r in found} == {mine} and {r["user_id"] for r in found} == {alice}
        assert_problem(await bound.post("/v1/search", json={**body, "user_id": bob}), 403)
    by_user = await _search(org.client, **body, user_id=bob, top_k=50)
    assert {r["path"] for r in by_user} == {"bob.md"}


async def test_large_scopes_search_chunks_through_the_hnsw_index(
    org: Org, database_url: str, db: Database, embedder: MiniLMEmbedder
) -> None:
    lib = await _library(database_url, embedder, org)
    caller = await keys.authenticate(db, org.key)
    rt = Runtime.build(Settings(database_url=database_url, exact_search_limit=0), db, embedder=embedder)
    # Two candidates: the org holds only four chunks, fewer than the default 50 the index path must find.
    body = {"query": "deploy on kubernetes", "mode": "vector", "types": ["chunks"], "top_k": 1, "candidates": 2}
    req = SearchRequest.model_validate({**body, "explain": True})
    response, accessed = await search.search(rt, caller, req)
    (hit,) = response.results
    assert hit.document_id == uuid.UUID(lib.deploy) and hit.explanation and hit.explanation.vector_method == "hnsw"
    assert accessed == []  # only memories count accesses


@pytest.mark.parametrize(
    "body",
    [
        {"types": ["chunk"]},
        {"types": ["documents", "pages"]},
        {"types": ["messages", "memories", "facts", "entities", "chunks", "documents", "contexts", "messages"]},
        {"filters": {"repository_id": []}},
        {"filters": {"repository_id": "handbook"}},
        {"filters": {"path_prefix": ""}},
        {"filters": {"content_types": "text/markdown"}},
    ],
)
async def test_bad_requests_are_422(org: Org, body: dict[str, object]) -> None:
    assert_problem(await org.client.post("/v1/search", json={"query": "install", **body}), 422)

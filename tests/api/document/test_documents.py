"""Documents and repositories: every content type, the 4xx for what cannot be read, dedupe, incremental
re-ingest (ids kept, only changed chunks embedded), repository sync and prune, filters and pages."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Sequence

import psycopg
import pytest

from engramdb import limits
from engramdb.config import Settings
from engramdb.providers import documents as parsing
from engramdb.providers.embedder import Embedder, Kind
from engramdb.schemas.documents import DocumentCreate, DocumentUpdate
from engramdb.server import create_app
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.document import documents, ingest, repositories, sync
from engramdb.services.document.sync import SourceFile
from engramdb.services.maintenance import backfill
from engramdb.storage.database import Database
from tests.conftest import Org, OrgFactory, assert_problem, client_for
from tests.providers.test_documents import make_pdf

SECTIONS = {
    "Install": "Run pip install engramdb and then start the server with engramdb serve.",
    "Configure": "Set ENGRAM_DATABASE_URL to point at your PostgreSQL server instead of the embedded one.",
    "Troubleshoot": "If the server does not start, read the log and check that the port is free.",
}
# One chunk per section at least: each section is long enough to fill one.
GUIDE = (
    "# Guide\n\nIntro paragraph about the project and what it is for.\n\n"
    + "\n\n".join(f"## {name}\n\n" + " ".join([text] * 12) for name, text in SECTIONS.items())
    + "\n"
)


class Counting:
    """Wraps the real embedder and remembers every text it was asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model = inner.model
        self.dimensions = inner.dimensions
        self.texts: list[str] = []

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        self.texts += texts
        return await self.inner.embed_batch(texts, kind=kind)


async def _doc(org: Org, status: int = 201, **body: object) -> dict:  # type: ignore[type-arg]
    r = await org.client.post("/v1/documents", json={"content": GUIDE, "path": "guide.md", **body})
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def _chunks(org: Org, doc_id: str) -> list[dict]:  # type: ignore[type-arg]
    r = await org.client.get(f"/v1/documents/{doc_id}/chunks", params={"limit": 200})
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def _count(database_url: str, sql: str, *args: object) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


async def test_create_get_list_update_delete(org: Org, database_url: str) -> None:
    created = await _doc(org, tags=["docs", "docs"], metadata={"team": "core"}, source_url="https://example.com/g")
    doc = created["document"]
    assert created["action"] == "created"
    assert created["chunks"]["added"] == doc["chunk_count"] > 0 and created["chunks"]["embedded"] == doc["chunk_count"]
    assert doc["title"] == "Guide" and doc["content_type"] == "text/markdown" and doc["tags"] == ["docs"]
    assert doc["size_bytes"] == len(GUIDE.encode()) and doc["content"] == GUIDE
    assert doc["content_sha256"] == __import__("hashlib").sha256(GUIDE.encode()).hexdigest()
    assert (await org.client.get(f"/v1/documents/{doc['id']}")).json() == doc
    bare = (await org.client.get(f"/v1/documents/{doc['id']}", params={"include_content": "false"})).json()
    assert bare["content"] is None and bare["chunk_count"] == doc["chunk_count"]
    listed = (await org.client.get("/v1/documents")).json()["data"]
    assert [d["id"] for d in listed] == [doc["id"]] and listed[0]["content"] is None

    r = await org.client.patch(f"/v1/documents/{doc['id']}", json={"tags": ["manual"], "metadata": None})
    patched = r.json()
    assert r.status_code == 200 and patched["tags"] == ["manual"] and patched["metadata"] == {}
    assert patched["content"] == GUIDE

    assert (await org.client.delete(f"/v1/documents/{doc['id']}")).status_code == 204
    assert_problem(await org.client.get(f"/v1/documents/{doc['id']}"), 404)
    assert_problem(await org.client.get(f"/v1/documents/{doc['id']}/chunks"), 404)
    assert_problem(await org.client.delete(f"/v1/documents/{doc['id']}"), 404)
    assert _count(database_url, "SELECT count(*) FROM chunk WHERE document_id = %s", uuid.UUID(doc["id"])) == 0
    actions = [e["action"] for e in (await org.client.get("/v1/audit", params={"entity_id": doc["id"]})).json()["data"]]
    assert actions == ["document.deleted", "document.updated", "document.created"]


async def test_identical_content_is_stored_once_per_owner(org: Org) -> None:
    first = await _doc(org)
    again = await _doc(org, status=200, title="Another title", tags=["x"])
    assert again["action"] == "unchanged" and again["document"]["id"] == first["document"]["id"]
    assert again["document"]["title"] == "Guide" and again["chunks"]["embedded"] == 0
    # Another owner gets its own copy; so does the same text under another path's name only if it differs.
    alice = await _doc(org, external_user_id="alice-dedupe")
    assert alice["action"] == "created" and alice["document"]["user_id"] != first["document"]["user_id"]
    assert (await _doc(org, status=200, external_user_id="alice-dedupe"))["document"]["id"] == alice["document"]["id"]


@pytest.mark.parametrize(
    ("path", "content", "content_type", "language", "title"),
    [
        ("notes.txt", "Plain words about tea.\n\nMore words about coffee.", "text/plain", None, None),
        ("guide.md", GUIDE, "text/markdown", None, "Guide"),
        ("store.py", "class Store:\n    def get(self, key):\n        return key\n", "text/x-code", "python", None),
        (
            "page.html",
            "<html><head><title>Help page</title></head><body><h1>Help</h1><p>Call us any day.</p></body></html>",
            "text/html",
            None,
            "Help page",
        ),
    ],
)
async def test_each_text_kind_through_json(
    org: Org, path: str, content: str, content_type: str, language: str | None, title: str | None
) -> None:
    doc = (await _doc(org, content=content, path=path))["document"]
    assert (doc["content_type"], doc["code_language"], doc["title"]) == (content_type, language, title)
    chunks = await _chunks(org, doc["id"])
    assert [c["ordinal"] for c in chunks] == list(range(doc["chunk_count"]))
    assert all(c["citation"].startswith(path) for c in chunks)


async def test_upload_each_kind_including_pdf(org: Org) -> None:
    pdf = make_pdf(["Quarterly revenue grew strongly", "Costs fell in the second half"], title="Annual Report")
    r = await org.client.post(
        "/v1/documents/upload",
        files={"file": ("report.pdf", pdf, "application/pdf")},
        data={"tags": ["finance,reports", "q3"], "metadata": '{"year": 2026}', "external_user_id": "up-user"},
    )
    assert r.status_code == 201, r.text
    doc = r.json()["document"]
    assert doc["content_type"] == "application/pdf" and doc["page_count"] == 2 and doc["title"] == "Annual Report"
    assert doc["tags"] == ["finance", "reports", "q3"] and doc["metadata"] == {"year": 2026}
    assert doc["path"] == "report.pdf" and "Quarterly revenue" in doc["content"]
    chunks = await _chunks(org, doc["id"])
    assert chunks[0]["page"] == 1 and chunks[0]["citation"].startswith("report.pdf, page")
    md = await org.client.post(
        "/v1/documents/upload",
        files={"file": ("guide.md", GUIDE.encode(), "text/plain")},
        data={"title": "Handbook"},
    )
    assert md.status_code == 201 and md.json()["document"]["content_type"] == "text/markdown"
    assert md.json()["document"]["title"] == "Handbook"
    code = await org.client.post(
        "/v1/documents/upload", files={"file": ("main.go", b"package main\n\nfunc main() {}\n")}
    )
    assert code.json()["document"]["code_language"] == "go"


async def test_what_cannot_be_read_is_a_clear_4xx(org: Org, settings: Settings, db: Database, embedder) -> None:  # type: ignore[no-untyped-def]
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
    body = assert_problem(await org.client.post("/v1/documents/upload", files={"file": ("logo.png", png)}), 415)
    assert "logo.png" in str(body["detail"]) and "binary" in str(body["detail"])
    assert_problem(await org.client.post("/v1/documents/upload", files={"file": ("e.md", b"  \n\n ")}), 422)
    assert_problem(await org.client.post("/v1/documents", json={"content": "", "path": "e.txt"}), 422)
    pdf_as_json = await org.client.post("/v1/documents", json={"content": "%PDF-1.4 x", "path": "x.pdf"})
    assert "upload" in str(assert_problem(pdf_as_json, 415)["detail"])
    latin1 = "café crème".encode("latin-1")
    assert_problem(await org.client.post("/v1/documents/upload", files={"file": ("menu.txt", latin1)}), 415)
    bad_meta = await org.client.post("/v1/documents/upload", files={"file": ("a.txt", b"x")}, data={"metadata": "[1"})
    assert_problem(bad_meta, 422)
    assert_problem(
        await org.client.post("/v1/documents", json={"content": "x", "repository_id": str(uuid.uuid4())}), 422
    )
    # Over the request limit the middleware answers first; over the document limit, the service does.
    big = b"a" * (limits.MAX_DOCUMENT_BYTES + 1)
    assert_problem(await org.client.post("/v1/documents/upload", files={"file": ("big.txt", big)}), 413)
    roomy = Settings(database_url=settings.database_url, auto_migrate=False, max_request_bytes=16 * 1024 * 1024)
    async with client_for(create_app(roomy, db=db, embedder=embedder), org.key) as client:
        body = assert_problem(await client.post("/v1/documents/upload", files={"file": ("big.txt", big)}), 413)
        assert f"{limits.MAX_DOCUMENT_BYTES:,}" in str(body["detail"])
    assert (await org.client.get("/v1/documents")).json()["data"] == []


def test_the_document_limit_is_the_parsers() -> None:
    assert limits.MAX_DOCUMENT_BYTES == parsing.MAX_DOCUMENT_BYTES


async def _runtime(settings: Settings, db: Database, embedder: Embedder) -> tuple[Runtime, Counting]:
    counting = Counting(embedder)
    return Runtime.build(settings, db, embedder=counting), counting


async def test_reingest_embeds_only_changed_chunks_and_keeps_ids(
    org: Org, settings: Settings, db: Database, embedder
) -> None:  # type: ignore[no-untyped-def]
    rt, counting = await _runtime(settings, db, embedder)
    caller = Caller.operator(org.id)
    sections = "\n\n".join(f"## Part {i}\n\n" + f"Sentence {i} about topic number {i}. " * 20 for i in range(6))
    text = f"# Book\n\n{sections}\n"
    first = await documents.create_text(rt, caller, DocumentCreate(content=text, path="book.md"))
    before = await _chunks(org, str(first.document.id))
    assert len(before) >= 6 and first.chunks.embedded == len(before) == len(counting.texts)

    counting.texts.clear()
    edited = text.replace("Sentence 3 about topic number 3.", "Sentence 3 now says something else entirely.")
    doc = await documents.update_document(rt, caller, first.document.id, DocumentUpdate(content=edited))
    after = await _chunks(org, str(doc.id))
    old_ids = {c["content"]: c["id"] for c in before}
    changed = [c for c in after if c["content"] not in old_ids]
    assert changed and all("something else" in c["content"] for c in changed)
    assert all(c["id"] == old_ids[c["content"]] for c in after if c["content"] in old_ids)
    assert len(counting.texts) == len(changed) and all("something else" in t for t in counting.texts)
    assert {c["id"] for c in changed}.isdisjoint(old_ids.values())

    counting.texts.clear()  # the same content again: nothing parsed, embedded or written
    again = await documents.update_document(rt, caller, doc.id, DocumentUpdate(content=edited))
    assert counting.texts == [] and again.updated_at == doc.updated_at


async def test_patch_reports_unchanged_and_title_change_keeps_ids(
    org: Org, settings: Settings, db: Database, embedder
) -> None:  # type: ignore[no-untyped-def]
    rt, counting = await _runtime(settings, db, embedder)
    doc = (await _doc(org, content="Some plain text to keep.\n\nAnd a second paragraph.", path="plain.txt"))["document"]
    before = await _chunks(org, doc["id"])
    caller = Caller.operator(org.id)
    same = await documents.update_document(rt, caller, uuid.UUID(doc["id"]), DocumentUpdate(content=doc["content"]))
    assert counting.texts == [] and same.updated_at.isoformat().replace("+00:00", "Z")[:19] == doc["updated_at"][:19]
    renamed = await documents.update_document(rt, caller, uuid.UUID(doc["id"]), DocumentUpdate(title="Kept text"))
    assert renamed.title == "Kept text" and len(counting.texts) == len(before)
    assert all("Kept text" in t for t in counting.texts)
    assert [c["id"] for c in await _chunks(org, doc["id"])] == [c["id"] for c in before]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_repository_sync_add_change_unchanged_skip_and_prune(org: Org) -> None:
    c = org.client
    repo = (await c.post("/v1/repositories", json={"name": "handbook", "source": "/src/handbook"})).json()
    files = [
        {"path": "guide.md", "content": GUIDE},
        {"path": "src/app.py", "content": "def main():\n    return 1\n"},
        {"path": "logo.png", "content_base64": _b64(b"\x89PNG\r\n\x1a\n" + bytes(32))},
        {"path": "empty.txt", "content": "   "},
        {"path": "report.pdf", "content_base64": _b64(make_pdf(["Revenue grew"]))},
    ]
    r = await c.post(f"/v1/repositories/{repo['id']}/files", json={"files": files})
    assert r.status_code == 200, r.text
    results = {x["path"]: x for x in r.json()["results"]}
    assert [x["path"] for x in r.json()["results"]] == [f["path"] for f in files]
    assert {p: x["action"] for p, x in results.items()} == {
        "guide.md": "added",
        "src/app.py": "added",
        "logo.png": "skipped",
        "empty.txt": "skipped",
        "report.pdf": "added",
    }
    assert "binary" in results["logo.png"]["reason"] and "no text" in results["empty.txt"]["reason"]
    assert results["guide.md"]["chunks"]["added"] > 0 and results["logo.png"]["document_id"] is None
    synced = (await c.get(f"/v1/repositories/{repo['id']}")).json()
    assert synced["document_count"] == 3 and synced["last_synced_at"]

    edited = GUIDE.replace("## Troubleshoot\n\n", "## Troubleshoot\n\nFirst, pick another port with --port. ")
    again = [{"path": "guide.md", "content": edited}, {"path": "src/app.py", "content": "def main():\n    return 1\n"}]
    results = {
        x["path"]: x
        for x in (await c.post(f"/v1/repositories/{repo['id']}/files", json={"files": again})).json()["results"]
    }
    assert results["guide.md"]["action"] == "changed" and results["src/app.py"]["action"] == "unchanged"
    assert (
        results["guide.md"]["document_id"]
        == (await c.get("/v1/documents", params={"path_prefix": "guide"})).json()["data"][0]["id"]
    )
    counts = results["guide.md"]["chunks"]
    assert counts["kept"] > 0 and 0 < counts["embedded"] <= 2 < counts["kept"] + counts["added"]
    assert results["src/app.py"]["chunks"]["embedded"] == 0

    # src/app.py was deleted from the folder: the next prune removes its document.
    r = await c.post(f"/v1/repositories/{repo['id']}/prune", json={"keep_paths": ["guide.md", "report.pdf"]})
    assert r.status_code == 200 and r.json() == {"deleted_paths": ["src/app.py"]}
    listed = (await c.get("/v1/documents", params={"repository_id": repo["id"]})).json()["data"]
    assert sorted(d["path"] for d in listed) == ["guide.md", "report.pdf"]
    assert all(d["repository_id"] == repo["id"] for d in listed)
    assert (await c.get(f"/v1/repositories/{repo['id']}")).json()["document_count"] == 2
    audit = (await c.get("/v1/audit", params={"entity_id": repo["id"]})).json()["data"]
    assert [e["action"] for e in audit] == [
        "repository.pruned",
        "repository.synced",
        "repository.synced",
        "repository.created",
    ]


async def test_repository_crud_and_delete_takes_its_documents(org: Org, database_url: str) -> None:
    c = org.client
    repo = (await c.post("/v1/repositories", json={"name": "wiki", "tags": ["kb"], "description": "the wiki"})).json()
    assert repo["document_count"] == 0 and repo["tags"] == ["kb"]
    assert_problem(await c.post("/v1/repositories", json={"name": "wiki"}), 409)
    other = (await c.post("/v1/repositories", json={"name": "other"})).json()
    assert_problem(await c.patch(f"/v1/repositories/{other['id']}", json={"name": "wiki"}), 409)
    patched = (await c.patch(f"/v1/repositories/{repo['id']}", json={"description": "our wiki", "tags": None})).json()
    assert patched["description"] == "our wiki" and patched["tags"] == [] and patched["name"] == "wiki"
    names = [x["name"] for x in (await c.get("/v1/repositories")).json()["data"]]
    assert names == ["other", "wiki"]
    # A document posted into the repository by path, then replaced at the same path.
    first = await _doc(org, repository_id=repo["id"], path="docs/guide.md")
    assert first["document"]["repository_id"] == repo["id"] and first["action"] == "created"
    replaced = await _doc(org, status=200, repository_id=repo["id"], path="docs/guide.md", content=GUIDE + "\nMore.\n")
    assert replaced["action"] == "updated" and replaced["document"]["id"] == first["document"]["id"]
    assert (await c.get(f"/v1/repositories/{repo['id']}")).json()["document_count"] == 1
    assert (await c.delete(f"/v1/repositories/{repo['id']}")).status_code == 204
    assert_problem(await c.get(f"/v1/repositories/{repo['id']}"), 404)
    assert_problem(await c.get(f"/v1/documents/{first['document']['id']}"), 404)
    doc_id = uuid.UUID(first["document"]["id"])
    assert _count(database_url, "SELECT count(*) FROM chunk WHERE document_id = %s", doc_id) == 0
    assert_problem(
        await c.post(f"/v1/repositories/{repo['id']}/files", json={"files": [{"path": "a", "content": "x"}]}), 404
    )


async def test_sync_limits_per_call(org: Org) -> None:
    c = org.client
    repo = (await c.post("/v1/repositories", json={"name": "limits"})).json()
    url = f"/v1/repositories/{repo['id']}/files"
    many = [{"path": f"f{i}.txt", "content": "x"} for i in range(limits.MAX_SYNC_FILES + 1)]
    assert_problem(await c.post(url, json={"files": many}), 422)
    half = "y" * (limits.MAX_SYNC_BYTES // 2 + 1)
    body = assert_problem(
        await c.post(url, json={"files": [{"path": "a.txt", "content": half}, {"path": "b.txt", "content": half}]}), 413
    )
    assert f"{limits.MAX_SYNC_BYTES:,}" in str(body["detail"])
    assert_problem(
        await c.post(url, json={"files": [{"path": "a.txt", "content": "x"}, {"path": "a.txt", "content": "y"}]}), 422
    )
    assert_problem(
        await c.post(url, json={"files": [{"path": "a.txt", "content": "x", "content_base64": "eA=="}]}), 422
    )
    assert_problem(await c.post(url, json={"files": [{"path": "a.txt", "content_base64": "not base64!"}]}), 422)
    assert_problem(
        await c.post(url, json={"files": [{"path": "p" * (limits.MAX_PATH_CHARS + 1), "content": "x"}]}), 422
    )


async def test_service_functions_for_the_cli(org: Org, settings: Settings, db: Database, embedder) -> None:  # type: ignore[no-untyped-def]
    rt = Runtime.build(settings, db, embedder=embedder)
    caller = Caller.operator(org.id)
    repo = await repositories.ensure_repository(rt, caller, "cli-tree", source="/home/me/notes")
    assert (await repositories.ensure_repository(rt, caller, "cli-tree")).id == repo.id
    files = [
        SourceFile("a.md", b"# A\n\nalpha text"),
        SourceFile("b.txt", b"beta text"),
        SourceFile("c.bin", b"\x00\x01"),
    ]
    results = await sync.sync_files(rt, caller, repo.id, files)
    assert [(r.path, r.action) for r in results] == [("a.md", "added"), ("b.txt", "added"), ("c.bin", "skipped")]
    kept = {r.path for r in results if r.action != "skipped"} - {"b.txt"}
    assert await sync.prune(rt, caller, repo.id, kept) == ["b.txt"]
    assert (await repositories.get(db, caller, repo.id)).document_count == 1


async def test_filters_and_pagination(org: Org) -> None:
    c = org.client
    made = []
    for i in range(5):
        body = {
            "content": f"Document number {i} talks about item {i}.",
            "path": f"{'notes' if i % 2 else 'misc'}/d{i}.{'md' if i < 3 else 'txt'}",
            "tags": ["even"] if i % 2 == 0 else ["odd", "x"],
            "metadata": {"n": i},
            "external_user_id": "filter-user" if i < 2 else None,
        }
        made.append((await _doc(org, **{k: v for k, v in body.items() if v is not None}))["document"])

    async def ids(**params: object) -> list[str]:
        r = await c.get("/v1/documents", params=params)
        assert r.status_code == 200, r.text
        return [d["id"] for d in r.json()["data"]]

    newest_first = [d["id"] for d in reversed(made)]
    assert await ids() == newest_first
    assert await ids(tags_any="odd") == [made[3]["id"], made[1]["id"]]
    assert await ids(tags_all=["odd", "x"]) == [made[3]["id"], made[1]["id"]]
    assert await ids(metadata='{"n": 2}') == [made[2]["id"]]
    assert await ids(path_prefix="notes/") == [made[3]["id"], made[1]["id"]]
    assert await ids(path_prefix="%") == []
    assert await ids(content_type="text/plain") == [made[4]["id"], made[3]["id"]]
    assert await ids(external_user_id="filter-user") == [made[1]["id"], made[0]["id"]]
    assert await ids(external_user_id="nobody") == []
    assert await ids(user_id=made[0]["user_id"]) == [made[1]["id"], made[0]["id"]]
    page1 = (await c.get("/v1/documents", params={"limit": 2})).json()
    page2 = (await c.get("/v1/documents", params={"limit": 2, "cursor": page1["next_cursor"]})).json()
    page3 = (await c.get("/v1/documents", params={"limit": 2, "cursor": page2["next_cursor"]})).json()
    assert [d["id"] for d in page1["data"] + page2["data"] + page3["data"]] == newest_first
    assert page3["next_cursor"] is None
    assert_problem(await c.get("/v1/documents", params={"cursor": "nonsense"}), 400)
    assert_problem(await c.get("/v1/documents", params={"metadata": "[]"}), 422)


async def test_chunks_are_listed_in_order_with_citations_and_pages(org: Org) -> None:
    text = "# Manual\n\n" + "\n\n".join(f"## Step {i}\n\n" + f"Do thing {i} carefully. " * 40 for i in range(4))
    doc = (await _doc(org, content=text, path="manual.md"))["document"]
    seen: list[dict] = []  # type: ignore[type-arg]
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await org.client.get(f"/v1/documents/{doc['id']}/chunks", params=params)).json()
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [ch["ordinal"] for ch in seen] == list(range(doc["chunk_count"])) and len(seen) > 2
    step2 = next(ch for ch in seen if "thing 2" in ch["content"])
    assert step2["heading_path"] == ["Manual", "Step 2"] and step2["start_line"] <= step2["end_line"]
    assert step2["citation"].startswith("manual.md, section") and "Step 2" in step2["citation"]
    assert text[step2["char_start"] : step2["char_end"]] == step2["content"]
    assert_problem(await org.client.get(f"/v1/documents/{doc['id']}/chunks", params={"cursor": "bad"}), 400)


async def test_bound_keys_see_and_write_only_their_own(app, make_org: OrgFactory) -> None:  # type: ignore[no-untyped-def]
    org = await make_org()
    c = org.client
    team = (await c.post("/v1/teams", json={"name": "docs-team"})).json()
    amy = (await c.post("/v1/users", json={"external_id": "amy-d", "team_id": team["id"]})).json()
    bob = (await c.post("/v1/users", json={"external_id": "bob-d"})).json()
    amys = (await _doc(org, content="Amy's notes on tea.", path="amy.md", user_id=amy["id"]))["document"]
    bobs = (await _doc(org, content="Bob's notes on coffee.", path="bob.md", user_id=bob["id"]))["document"]
    shared = (await _doc(org, content="Org-wide policy.", path="policy.md"))["document"]
    bob_repo = (await c.post("/v1/repositories", json={"name": "bob-repo", "user_id": bob["id"]})).json()
    amy_key = (await c.post("/v1/keys", json={"name": "amy", "user_id": amy["id"]})).json()["api_key"]
    team_key = (await c.post("/v1/keys", json={"name": "team", "team_id": team["id"]})).json()["api_key"]
    for key in (amy_key, team_key):
        async with client_for(app, key) as bound:
            assert [d["id"] for d in (await bound.get("/v1/documents")).json()["data"]] == [amys["id"]]
            for doc_id in (bobs["id"], shared["id"]):
                assert_problem(await bound.get(f"/v1/documents/{doc_id}"), 404)
                assert_problem(await bound.get(f"/v1/documents/{doc_id}/chunks"), 404)
                assert_problem(await bound.patch(f"/v1/documents/{doc_id}", json={"title": "x"}), 404)
                assert_problem(await bound.delete(f"/v1/documents/{doc_id}"), 404)
            assert_problem(await bound.get(f"/v1/repositories/{bob_repo['id']}"), 404)
            files = {"files": [{"path": "x.md", "content": "intruder"}]}
            assert_problem(await bound.post(f"/v1/repositories/{bob_repo['id']}/files", json=files), 404)
            assert_problem(await bound.post(f"/v1/repositories/{bob_repo['id']}/prune", json={"keep_paths": []}), 404)
            assert (await bound.get("/v1/repositories")).json()["data"] == []
            body = {"content": "for bob", "path": "b.md", "user_id": bob["id"]}
            assert_problem(await bound.post("/v1/documents", json=body), 403)
    async with client_for(app, amy_key) as as_amy:
        mine = (await as_amy.post("/v1/documents", json={"content": "Amy again.", "path": "a2.md"})).json()
        assert mine["document"]["user_id"] == amy["id"]
        assert_problem(await as_amy.post("/v1/documents", json={"content": "x", "external_user_id": "new-guy"}), 403)
        repo = (await as_amy.post("/v1/repositories", json={"name": "amy-repo"})).json()
        assert repo["user_id"] == amy["id"]
    async with client_for(app, team_key) as as_team:
        # A team key must say which of its users a document is for: it could not see an org-wide one.
        assert_problem(await as_team.post("/v1/documents", json={"content": "team doc", "path": "t.md"}), 403)
        ok = await as_team.post("/v1/documents", json={"content": "team doc", "path": "t.md", "user_id": amy["id"]})
        assert ok.status_code == 201
    assert (await c.get(f"/v1/repositories/{bob_repo['id']}")).json()["document_count"] == 0


async def test_backfill_embeds_chunks_as_the_ingest_does(
    org: Org, settings: Settings, db: Database, embedder, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    doc = (await _doc(org, content="Backfilled words about sailing boats.", path="sail.txt"))["document"]
    doc_id = uuid.UUID(doc["id"])
    with psycopg.connect(database_url) as conn:
        (stored,) = conn.execute("SELECT embedding::text FROM chunk WHERE document_id = %s", (doc_id,)).fetchone()  # type: ignore[misc]
        conn.execute("UPDATE chunk SET embedding = NULL, embedding_model = NULL WHERE document_id = %s", (doc_id,))
    rt = Runtime.build(settings, db, embedder=embedder)
    assert await backfill.count_pending(rt, other_models=False) >= 1
    assert await backfill.backfill(rt) >= 1
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT embedding::text, embedding_model FROM chunk WHERE document_id = %s", (doc_id,)
        ).fetchone()
    assert row is not None and row[1] == embedder.model

    def floats(text: str) -> list[float]:
        return [float(x) for x in text.strip("[]").split(",")]

    # The same text as the ingest embedded (batching may move the last digits).
    assert max(abs(a - b) for a, b in zip(floats(row[0]), floats(stored), strict=True)) < 1e-4


async def test_concurrent_writes_of_the_same_document_store_it_once(org: Org) -> None:
    body = {"content": "Raced text about kites and wind.", "path": "race.txt"}
    results = await asyncio.gather(*(org.client.post("/v1/documents", json=body) for _ in range(4)))
    assert sorted(r.status_code for r in results) == [200, 200, 200, 201]
    assert len({r.json()["document"]["id"] for r in results}) == 1
    repo = (await org.client.post("/v1/repositories", json={"name": "raced"})).json()
    url = f"/v1/repositories/{repo['id']}/files"
    files = [{"path": "same.md", "content": f"# Version {i}\n\ntext {i}"} for i in range(3)]
    synced = await asyncio.gather(*(org.client.post(url, json={"files": [f]}) for f in files))
    assert all(r.status_code == 200 for r in synced), [r.text for r in synced]
    assert sorted(r.json()["results"][0]["action"] for r in synced) == ["added", "changed", "changed"]
    assert (await org.client.get(f"/v1/repositories/{repo['id']}")).json()["document_count"] == 1


async def test_a_document_changed_while_embedding_is_planned_again(
    org: Org,
    settings: Settings,
    db: Database,
    embedder,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    rt, counting = await _runtime(settings, db, embedder)
    caller = Caller.operator(org.id)
    doc = (await documents.create_text(rt, caller, DocumentCreate(content="First text.", path="moving.txt"))).document
    real_embed = ingest._embed
    calls = 0

    async def embed_then_interfere(rt_: Runtime, plans: list, progress: ingest.Progress | None = None) -> None:  # type: ignore[type-arg]
        nonlocal calls
        calls += 1
        await real_embed(rt_, plans, progress)
        if calls == 1:  # another writer changes the document while this one was embedding
            await documents.update_document(rt, caller, doc.id, DocumentUpdate(tags=["meanwhile"]))

    monkeypatch.setattr(ingest, "_embed", embed_then_interfere)
    updated = await documents.update_document(rt, caller, doc.id, DocumentUpdate(content="Second text."))
    assert calls == 3  # this write, the interfering one, this write planned again
    assert updated.content == "Second text." and updated.tags == ["meanwhile"]


async def test_review_regressions_bad_pdf_text_bad_values_in_a_sync_and_owners_deletable(org: Org) -> None:
    c = org.client
    # A PDF title with a NUL (and a lone surrogate in its text, as broken font maps produce) is cleaned.
    assert ingest._storable("a\ud800b\x00c") == "a\ufffdbc"
    pdf = make_pdf(["Readable page text. More."], title="a\x00b")
    r = await c.post("/v1/documents/upload", files={"file": ("odd.pdf", pdf, "application/pdf")})
    assert r.status_code == 201, r.text
    assert r.json()["document"]["title"] == "ab"
    # An agent and an app that own documents and repositories can still be deleted.
    agent = (await c.post("/v1/agents", json={"name": "doc-agent"})).json()["id"]
    app_id = (await c.post("/v1/apps", json={"name": "doc-app"})).json()["id"]
    r = await c.post("/v1/documents", json={"content": "Owned text.", "agent_id": agent, "app_id": app_id})
    assert r.status_code == 201, r.text
    r = await c.post("/v1/repositories", json={"name": "owned-repo", "agent_id": agent, "app_id": app_id})
    assert r.status_code == 201, r.text
    assert (await c.delete(f"/v1/agents/{agent}")).status_code == 204
    assert (await c.delete(f"/v1/apps/{app_id}")).status_code == 204
    # Prune keeps a synced path even when it is named with stray spaces.
    repo = r.json()["id"]
    r = await c.post(f"/v1/repositories/{repo}/files", json={"files": [{"path": " notes.md", "content": "# N\n\nx"}]})
    assert r.json()["results"][0]["action"] == "added"
    r = await c.post(f"/v1/repositories/{repo}/prune", json={"keep_paths": [" notes.md"]})
    assert r.json()["deleted_paths"] == []


async def test_patching_content_onto_a_twin_says_so(org: Org) -> None:
    c = org.client
    a = (await c.post("/v1/documents", json={"content": "Alpha text.", "path": "a.txt"})).json()["document"]["id"]
    await c.post("/v1/documents", json={"content": "Beta text.", "path": "b.txt"})
    r = await c.patch(f"/v1/documents/{a}", json={"content": "Beta text."})
    body = assert_problem(r, 409)
    assert "exactly this content" in str(body["detail"])


async def test_a_file_that_breaks_the_parser_is_skipped_not_the_sync(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ingest.chunk_document

    def fragile(parsed, **kwargs):  # type: ignore[no-untyped-def]
        if "boom" in parsed.text:
            raise RuntimeError("an unforeseen parser failure")
        return real(parsed, **kwargs)

    monkeypatch.setattr(ingest, "chunk_document", fragile)
    c = org.client
    repo = (await c.post("/v1/repositories", json={"name": "fragile"})).json()["id"]
    files = [{"path": "bad.md", "content": "# boom"}, {"path": "good.md", "content": "# fine"}]
    r = await c.post(f"/v1/repositories/{repo}/files", json={"files": files})
    assert r.status_code == 200, r.text
    actions = {x["path"]: (x["action"], x["reason"]) for x in r.json()["results"]}
    assert actions["good.md"][0] == "added"
    assert actions["bad.md"][0] == "skipped" and "could not be read" in actions["bad.md"][1]

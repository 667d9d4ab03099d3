"""The SDK against the real app in-process (httpx ASGI transport): namespaces, pagination, errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

import engramdb
from engramdb.sdk import (
    AsyncClient,
    AuthenticationError,
    Client,
    NotFoundError,
    UnprocessableEntityError,
)
from engramdb.services.memory.categories import BUILTIN
from tests.conftest import OrgFactory
from tests.jobs.conftest import worker  # noqa: F401  (the in-process job worker, for wait())

ROOT = Path(__file__).resolve().parents[2]


def _operations(node: Any, seen: set[int] | None = None, prefix: str = "client") -> dict[str, str]:
    """Every method marked with an operation id, reachable from the client through its namespaces."""
    seen = seen if seen is not None else set()
    found: dict[str, str] = {}
    if id(node) in seen:
        return found
    seen.add(id(node))
    for name in dir(node):
        if name.startswith("_"):
            continue
        value = getattr(node, name)
        op = getattr(value, "__engram_operation__", None)
        if op is not None:
            found[op] = f"{prefix}.{name}"
        elif type(value).__module__.startswith("engramdb.sdk._"):
            found.update(_operations(value, seen, f"{prefix}.{name}"))
    return found


@pytest.mark.parametrize("client_type", [AsyncClient, Client])
def test_every_api_operation_has_an_sdk_method(app, client_type: type) -> None:  # type: ignore[no-untyped-def]
    spec = app.openapi()
    api_ops = {op["operationId"] for ops in spec["paths"].values() for op in ops.values()}
    sdk_ops = _operations(client_type(base_url="http://engram.test", api_key="egm_x"))
    missing = sorted(api_ops - set(sdk_ops))
    assert not missing, f"operations without an SDK method: {missing}"
    stale = sorted(set(sdk_ops) - api_ops)
    assert not stale, f"SDK methods for operations the API no longer has: {stale}"


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/unasync.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_clients_are_the_public_surface() -> None:
    assert engramdb.Client is Client and engramdb.AsyncClient is AsyncClient


@pytest.fixture
async def sdk(app, make_org: OrgFactory) -> AsyncIterator[AsyncClient]:  # type: ignore[no-untyped-def]
    org = await make_org()
    async with AsyncClient("http://engram.test", org.key, transport=httpx.ASGITransport(app=app)) as client:
        yield client


async def test_conversation_to_context(sdk: AsyncClient) -> None:
    session = await sdk.sessions.create(external_user_id="alice", title="onboarding")
    added = await sdk.sessions.messages.add(
        session.id,
        [
            {"role": "user", "content": "I moved to Lisbon last month", "occurred_at": "2026-05-02T10:00:00Z"},
            {"role": "assistant", "content": "How do you like it?"},
            {"role": "user", "content": "My sister Anna lives in Porto"},
        ],
    )
    assert len(added.data) == 3
    assert added.data[0].occurred_at is not None and added.data[0].occurred_at.year == 2026
    listed = [m.content async for m in sdk.sessions.messages.list(session.id, limit=2)]
    assert listed == ["I moved to Lisbon last month", "How do you like it?", "My sister Anna lives in Porto"]
    hits = await sdk.search(query="which city did alice move to", external_user_id="alice", types=["messages"])
    assert any("Lisbon" in hit.content for hit in hits.results[:2])
    context = await sdk.context(session_id=session.id, query="Where does she live?", token_budget=400)
    assert "Lisbon" in context.context and context.tokens <= 400


async def test_crud_and_pagination(sdk: AsyncClient) -> None:
    created = [await sdk.memories.create(external_user_id="bob", content=f"Bob fact number {i}") for i in range(5)]
    pager = sdk.memories.list(external_user_id="bob", limit=2)
    first = await pager.page()
    assert len(first.data) == 2 and first.next_cursor
    every = await pager.to_list()
    assert {m.id for m in every} == {m.id for m in created}
    assert len(await sdk.memories.list(external_user_id="bob", limit=2).to_list(limit=3)) == 3
    changed = await sdk.memories.update(created[0].id, content="Bob fact number zero")
    assert changed.content == "Bob fact number zero"
    history = await sdk.memories.history(created[0].id).to_list()
    assert history[-1].old_values == {"content": "Bob fact number 0"}
    await sdk.memories.delete(created[1].id, hard=True)
    with pytest.raises(NotFoundError):
        await sdk.memories.get(created[1].id)


async def test_categories_and_the_access_log_are_pages(sdk: AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    assert [c.name async for c in sdk.categories.list(limit=5)] == sorted(BUILTIN)
    memory = await sdk.memories.create(content="the spare key is under the blue pot")
    await app.state.runtime.access.flush()  # hits left by earlier tests
    await sdk.search(query="spare key", types=["memories"])
    assert await app.state.runtime.access.flush() >= 1
    (seen,) = await sdk.memories.accesses(memory.id, access_type="search").to_list()
    assert seen.memory_id == memory.id
    assert [a.id async for a in sdk.memories.access_log(memory_id=memory.id)] == [seen.id]


async def test_external_ids_with_url_characters_name_the_right_user(sdk: AsyncClient) -> None:
    plain = await sdk.users.create(external_id="team1")
    tricky = await sdk.users.create(external_id="team1?x")
    dots = await sdk.users.create(external_id="..")
    assert (await sdk.users.get_by_external_id("team1?x")).id == tricky.id
    assert (await sdk.users.get_by_external_id("team1")).id == plain.id
    assert (await sdk.users.get_by_external_id("..")).id == dots.id


async def test_errors_mirror_problem_details(sdk: AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFoundError) as missing:
        await sdk.memories.get("00000000-0000-0000-0000-000000000000")
    assert missing.value.status == 404 and missing.value.type.startswith("urn:engramdb:problem:")
    assert missing.value.detail and str(missing.value).startswith("404 ")
    with pytest.raises(UnprocessableEntityError) as invalid:
        await sdk.request("POST", "/v1/memories", json={"content": ""})
    assert invalid.value.status == 422 and invalid.value.errors
    with pytest.raises(ValidationError):  # checked before it is sent
        await sdk.memories.create(content="x", no_such_field=1)
    async with AsyncClient("http://engram.test", "egm_wrong", transport=httpx.ASGITransport(app=app)) as bad:
        with pytest.raises(AuthenticationError) as denied:
            await bad.memories.list().page()
    assert denied.value.status == 401


async def test_documents_facts_and_graph(sdk: AsyncClient) -> None:
    uploaded = await sdk.documents.upload(
        b"# Install\n\nRun pip install engramdb.\n", filename="README.md", file_content_type="text/markdown"
    )
    assert uploaded.document.path == "README.md"
    chunks = await sdk.documents.chunks(uploaded.document.id).to_list()
    assert chunks and "pip install" in chunks[0].content
    fact = await sdk.facts.create(
        external_user_id="carol", subject="Carol", predicate="lives_in", object="Lisbon", object_is_entity=True
    )
    assert fact.fact.object == "Lisbon"
    facts = await sdk.facts.list(subject="Carol").to_list()
    assert [f.predicate for f in facts] == ["lives_in"]
    people = await sdk.entities.list(q="Carol").to_list()
    assert people
    around = await sdk.entities.neighbors(people[0].id, depth=1)
    assert any(n.name == "Lisbon" for n in around.entities)


async def test_export_streams_and_imports_into_another_org(  # type: ignore[no-untyped-def]
    sdk: AsyncClient, app, make_org: OrgFactory
) -> None:
    memory = await sdk.memories.create(external_user_id="fay", content="Fay paints watercolours")
    records = [record async for record in sdk.data.export()]
    assert records[0]["kind"] == "engram.export"
    assert [r["data"]["id"] for r in records if r["kind"] == "memory"] == [str(memory.id)]
    other = await make_org()
    async with AsyncClient("http://engram.test", other.key, transport=httpx.ASGITransport(app=app)) as target:
        result = await target.data.import_(records)
        assert result.imported["memories"] == 1
        assert (await target.memories.get(memory.id)).content == "Fay paints watercolours"
        again = await target.data.import_(records)
        assert again.skipped["memories"] == 1 and sum(again.imported.values()) == 0
    with pytest.raises(NotFoundError):
        _ = [record async for record in sdk.data.export(external_user_id="nobody")]


@pytest.mark.usefixtures("worker")
async def test_waiting_for_a_job(sdk: AsyncClient) -> None:
    session = await sdk.sessions.create(external_user_id="gus")
    added = await sdk.sessions.messages.add(session.id, [{"role": "user", "content": "I live in Madrid"}])
    assert added.job is not None
    job = await sdk.jobs.wait(added.job.id, timeout=60)
    assert job.status == "succeeded" and job.result
    memories = await sdk.memories.list(external_user_id="gus").to_list()
    assert any("Madrid" in m.content for m in memories)

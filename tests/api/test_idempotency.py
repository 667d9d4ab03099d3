"""Idempotency-Key: a retried POST is done once; the key is bound to its request and its organization."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from engramdb import AsyncClient
from tests.conftest import Org, OrgFactory, assert_problem


async def _count(org: Org) -> int:
    return len((await org.client.get("/v1/memories", params={"limit": 200})).json()["data"])


async def test_a_retry_with_the_same_key_replays_the_first_answer(org: Org) -> None:
    c = org.client
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await c.post("/v1/memories", json={"content": "once"}, headers=key)
    again = await c.post("/v1/memories", json={"content": "once"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count(org) == 1
    # Without a key, the same body is a new request.
    await c.post("/v1/memories", json={"content": "once"})
    assert await _count(org) == 2


async def test_the_same_key_with_another_request_is_refused(org: Org) -> None:
    c = org.client
    key = {"Idempotency-Key": "k-1"}
    assert (await c.post("/v1/memories", json={"content": "a"}, headers=key)).status_code == 201
    problem = assert_problem(await c.post("/v1/memories", json={"content": "b"}, headers=key), 422)
    assert "Idempotency-Key" in str(problem["detail"])
    assert_problem(await c.post("/v1/sessions", json={}, headers=key), 422)
    assert await _count(org) == 1


async def test_a_refusal_is_replayed_too(org: Org) -> None:
    c = org.client
    key = {"Idempotency-Key": "missing-session"}
    gone = f"/v1/sessions/{uuid.uuid4()}/messages"
    body = {"messages": [{"role": "user", "content": "hi"}]}
    first = await c.post(gone, json=body, headers=key)
    again = await c.post(gone, json=body, headers=key)
    assert first.status_code == again.status_code == 404
    assert again.headers["idempotent-replayed"] == "true"


async def test_keys_belong_to_one_organization(make_org: OrgFactory) -> None:
    a, b = await make_org(), await make_org()
    key = {"Idempotency-Key": "shared-name"}
    ra = await a.client.post("/v1/memories", json={"content": "a's"}, headers=key)
    rb = await b.client.post("/v1/memories", json={"content": "b's"}, headers=key)
    assert ra.status_code == rb.status_code == 201
    assert ra.json()["id"] != rb.json()["id"]
    assert "idempotent-replayed" not in rb.headers


async def test_concurrent_requests_with_one_key_write_once(org: Org) -> None:
    c = org.client
    key = {"Idempotency-Key": str(uuid.uuid4())}
    answers = await asyncio.gather(*(c.post("/v1/memories", json={"content": "race"}, headers=key) for _ in range(5)))
    assert {r.status_code for r in answers} <= {201, 409}
    assert {r.json()["id"] for r in answers if r.status_code == 201} and await _count(org) == 1
    for r in answers:
        if r.status_code == 409:
            assert r.headers["retry-after"] == "1"


async def test_a_malformed_key_is_a_400(org: Org) -> None:
    for bad in ("", "x" * 256, "has space", "tab\there"):
        r = await org.client.post("/v1/memories", json={"content": "x"}, headers={"Idempotency-Key": bad})
        assert_problem(r, 400)
    assert await _count(org) == 0


async def test_without_a_valid_api_key_the_route_answers_401(anon) -> None:  # type: ignore[no-untyped-def]
    r = await anon.post("/v1/memories", json={"content": "x"}, headers={"Idempotency-Key": "k"})
    assert_problem(r, 401)


class _LosesTheFirstAnswer(httpx.AsyncBaseTransport):
    """The server does the first request, and the connection breaks before its answer arrives."""

    def __init__(self, app: object) -> None:
        self.inner = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.calls += 1
        if self.calls == 1:
            await response.aread()
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response


async def test_the_sdk_retries_a_create_whose_answer_was_lost_and_it_is_written_once(app, org: Org) -> None:  # type: ignore[no-untyped-def]
    transport = _LosesTheFirstAnswer(app)
    async with AsyncClient("http://engram.test", org.key, transport=transport) as client:
        memory = await client.memories.create(content="exactly once")
    assert transport.calls == 2
    assert memory.content == "exactly once"
    assert await _count(org) == 1

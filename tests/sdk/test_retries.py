"""Retries, timeouts and error mapping of both clients, against scripted transports (no server needed:
what is under test is the client's own policy)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from engramdb.sdk import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    Client,
    InternalServerError,
    RateLimitError,
)
from engramdb.sdk import _common as common

PROBLEM = {"type": "urn:engramdb:problem:unavailable", "title": "Service Unavailable", "status": 503, "detail": "x"}
PAGE = {"data": [], "next_cursor": None}
BACKOFF = common.backoff_s  # the real one: the fixture below replaces it to keep the tests fast


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []

    def record(attempt: int, response: httpx.Response | None) -> float:
        waits.append(BACKOFF(attempt, response))
        return 0.0

    monkeypatch.setattr(common, "backoff_s", record)
    return waits


def scripted(*steps: int | type[Exception]) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    """A handler answering with each step in turn (a status, or an exception to raise); logs methods."""
    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        step = steps[min(len(calls), len(steps) - 1)]
        calls.append(request.method)
        if isinstance(step, type):
            raise step("scripted failure", request=request)
        headers = {"retry-after": "2"} if step == 429 else {}
        body = PAGE if step < 400 else {**PROBLEM, "status": step}
        return httpx.Response(step, json=body, headers=headers)

    return handle, calls


def sync_client(handler: Callable[[httpx.Request], httpx.Response], retries: int = 2) -> Client:
    return Client("http://engram.test", "egm_x", transport=httpx.MockTransport(handler), max_retries=retries)


def test_idempotent_calls_retry_on_503_then_succeed() -> None:
    handler, calls = scripted(503, 503, 200)
    with sync_client(handler) as client:
        assert client.memories.list().page().data == []
    assert calls == ["GET", "GET", "GET"]


def test_gives_up_after_max_retries_with_the_problem() -> None:
    handler, calls = scripted(503)
    with sync_client(handler, retries=1) as client, pytest.raises(InternalServerError) as raised:
        client.memories.list().page()
    assert len(calls) == 2 and raised.value.status == 503 and raised.value.detail == "x"


def test_a_create_is_retried_with_one_idempotency_key() -> None:
    """A create carries an Idempotency-Key, the same on every attempt, so the server does it once and a
    retry after a 503 or a broken connection is safe (docs/api.md, "Retries and Idempotency-Key")."""
    for first in (503, httpx.ReadError):
        keys: list[str | None] = []

        def handle(
            request: httpx.Request, first: int | type[Exception] = first, keys: list[str | None] = keys
        ) -> httpx.Response:
            keys.append(request.headers.get("idempotency-key"))
            if len(keys) == 1:
                if isinstance(first, type):
                    raise first("scripted failure", request=request)
                return httpx.Response(first, json={**PROBLEM, "status": first})
            return httpx.Response(201, json={"ok": True})

        with sync_client(handle) as client:
            client.request("POST", "/v1/memories", json={"content": "once"})
        assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    # Every call gets its own key; a key given by the caller is kept.
    seen: list[str | None] = []

    def remember(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("idempotency-key"))
        return httpx.Response(201, json={"ok": True})

    with sync_client(remember) as client:
        client.request("POST", "/v1/memories", json={"content": "a"})
        client.request("POST", "/v1/memories", json={"content": "b"})
        client.request("POST", "/v1/memories", json={"content": "c"}, headers={"Idempotency-Key": "mine"})
        client.request("GET", "/v1/memories")
    assert seen[0] != seen[1] and seen[2] == "mine" and seen[3] is None


def test_a_call_that_must_not_repeat_is_never_repeated() -> None:
    handler, calls = scripted(503)
    with sync_client(handler) as client, pytest.raises(InternalServerError):
        client.request("POST", "/v1/import", content=b"{}", idempotent=False)
    assert calls == ["POST"]
    handler, calls = scripted(httpx.ReadError)
    with sync_client(handler) as client, pytest.raises(APIConnectionError):
        client.request("POST", "/v1/import", content=b"{}", idempotent=False)
    assert calls == ["POST"]


def test_429_is_retried_for_any_call_honouring_retry_after(no_waiting: list[float]) -> None:
    handler, calls = scripted(429, 201)
    with sync_client(handler) as client:
        client.request("POST", "/v1/memories", json={"content": "x"})
    assert calls == ["POST", "POST"] and no_waiting == [2.0]
    handler, calls = scripted(429)
    with sync_client(handler, retries=0) as client, pytest.raises(RateLimitError):
        client.memories.list().page()


def test_connection_errors_and_timeouts() -> None:
    handler, calls = scripted(httpx.ConnectError, 200)
    with sync_client(handler) as client:
        client.memories.list().page()
    assert calls == ["GET", "GET"]
    handler, calls = scripted(httpx.ReadTimeout)
    with sync_client(handler) as client, pytest.raises(APITimeoutError):
        client.memories.get("00000000-0000-0000-0000-000000000001")
    assert len(calls) == 3


async def test_the_async_client_follows_the_same_policy() -> None:
    handler, calls = scripted(502, 200)
    async with AsyncClient("http://engram.test", "egm_x", transport=httpx.MockTransport(handler)) as client:
        await client.jobs.list().page()
    assert calls == ["GET", "GET"]


def test_backoff_grows_and_is_capped() -> None:
    waits = [BACKOFF(attempt, None) for attempt in (1, 2, 3, 10)]
    assert 0.75 <= waits[0] <= 1.25 and waits[1] > waits[0] and waits[3] <= common.MAX_BACKOFF_S * 1.25
    dated = httpx.Response(429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert BACKOFF(1, dated) == 0.0


def test_the_key_and_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=PAGE)

    monkeypatch.setenv("ENGRAM_URL", "http://memory.example:9000/")
    monkeypatch.setenv("ENGRAM_API_KEY", "egm_from_env")
    with Client(transport=httpx.MockTransport(handle)) as client:
        client.tags.list(prefix="a").page()
    assert str(seen[0].url) == "http://memory.example:9000/v1/tags?prefix=a"
    assert seen[0].headers["authorization"] == "Bearer egm_from_env"
    assert seen[0].headers["user-agent"].startswith("engramdb-python/")


def test_ids_are_one_encoded_path_segment() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={**PROBLEM, "status": 404})

    with Client("http://engram.test", "egm_x", transport=httpx.MockTransport(handle)) as client:
        for external_id in ("team1?x", "a#b", "..", "50% off"):
            with pytest.raises(Exception, match="404"):
                client.users.get_by_external_id(external_id)
        with pytest.raises(ValueError, match="holds a '/'"):
            client.users.get_by_external_id("a/b")
    paths = [r.url.raw_path.decode() for r in seen]
    assert paths == [
        "/v1/users/by-external-id/team1%3Fx",
        "/v1/users/by-external-id/a%23b",
        "/v1/users/by-external-id/%2E%2E",
        "/v1/users/by-external-id/50%25%20off",
    ]


def test_a_client_of_your_own_gets_the_key_and_headers() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=PAGE)

    own = httpx.Client(base_url="http://mine.test", transport=httpx.MockTransport(handle))
    with Client(api_key="egm_mine", headers={"X-Trace": "1"}, http_client=own) as client:
        client.tags.list().page()
        assert client.base_url == "http://mine.test"
    assert seen[0].headers["authorization"] == "Bearer egm_mine" and seen[0].headers["x-trace"] == "1"
    assert not own.is_closed  # it is yours to close
    own.close()


def test_the_generated_sync_code_holds_nothing_async() -> None:
    """Every name in the generated code is a sync one (comments and docstrings may still say "async")."""
    import io
    import tokenize
    from pathlib import Path

    import engramdb.sdk._sync as sync

    for path in Path(sync.__file__).parent.rglob("*.py"):
        names = {t.string for t in tokenize.generate_tokens(io.StringIO(path.read_text()).readline) if t.type == 1}
        leftovers = {
            n for n in names if n in {"async", "await", "asyncio", "anext"} or n.startswith(("aiter", "Async"))
        }
        leftovers |= {n for n in names if n.startswith("__a") and n.endswith("__")}
        assert not leftovers, f"{path.name} still uses {sorted(leftovers)}"

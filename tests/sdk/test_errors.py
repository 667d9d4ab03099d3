"""Every server error reaches a client as the SDK error for its status, and ``except engramdb.<Name>``
catches it: the server's tree (``engramdb.errors``) is walked, each class is raised in an app that maps
errors as the API does (``engramdb.api.problems``), and both clients are asked what they raise."""

from __future__ import annotations

import importlib
import pkgutil

import httpx
import pytest
from fastapi import FastAPI

import engramdb
from engramdb.api import problems
from engramdb.errors import EngramError
from engramdb.sdk import errors as sdk

# What a client should catch for each status a server error carries. Written out here rather than read
# from the SDK, so a server error whose status has no SDK class of its own fails the test.
EXPECTED: dict[int, type[sdk.APIStatusError]] = {
    400: sdk.BadRequestError,
    401: sdk.AuthenticationError,
    403: sdk.PermissionDeniedError,
    404: sdk.NotFoundError,
    409: sdk.ConflictError,
    413: sdk.PayloadTooLargeError,
    415: sdk.UnsupportedMediaTypeError,
    422: sdk.UnprocessableEntityError,
    429: sdk.RateLimitError,
    500: sdk.InternalServerError,
    502: sdk.InternalServerError,
    503: sdk.InternalServerError,
}


def _server_errors() -> list[type[EngramError]]:
    """Every subclass of ``EngramError``, wherever it is defined (``LLMError`` lives in providers)."""
    for module in pkgutil.walk_packages(engramdb.__path__, "engramdb."):
        if ".migrations" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: set[type[EngramError]] = set()
    todo: list[type[EngramError]] = [EngramError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))


SERVER_ERRORS = _server_errors()


def test_the_walk_finds_the_server_errors() -> None:
    names = {cls.__name__ for cls in SERVER_ERRORS}
    assert {"NotFound", "ValidationFailed", "EmptyContent", "LLMError", "ServiceUnavailable"} <= names


def _failing_app(error: type[EngramError]) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/fail")
    async def fail() -> None:
        raise error("it failed")

    return app


@pytest.mark.parametrize("error", SERVER_ERRORS, ids=lambda cls: cls.__name__)
async def test_a_server_error_raises_the_sdk_error_for_its_status(error: type[EngramError]) -> None:
    expected = EXPECTED.get(error.status)
    assert expected is not None, f"{error.__name__} answers {error.status}, which has no SDK exception"
    name = expected.__name__
    assert name in engramdb.__all__, f"engramdb does not export {name}, so `except engramdb.{name}` fails"
    caught = getattr(engramdb, name)

    transport = httpx.ASGITransport(app=_failing_app(error))
    async with engramdb.AsyncClient("http://engram.test", "egm_x", transport=transport, max_retries=0) as client:
        with pytest.raises(caught) as raised:
            await client.request("GET", "/fail")
    assert type(raised.value) is expected
    assert raised.value.status == error.status and raised.value.detail == "it failed"
    assert raised.value.type == problems.PROBLEM_BASE + error.slug

    answer = raised.value.response  # the same answer, to the generated sync client

    def replay(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    with engramdb.Client("http://engram.test", "egm_x", transport=httpx.MockTransport(replay), max_retries=0) as sync:
        with pytest.raises(caught) as again:
            sync.request("GET", "/fail")
    assert type(again.value) is expected

"""The SDK's exceptions: one tree that mirrors the API's problem+json (RFC 9457) bodies.

``APIStatusError`` and its subclasses carry what the server said (``status``, ``type``, ``title``,
``detail``, the whole ``body``); ``APIConnectionError`` and ``APITimeoutError`` mean no answer came.
Catch ``APIError`` for all of them.
"""

from __future__ import annotations

from typing import Any

import httpx


class APIError(Exception):
    """Any failure of a call to the Engram API."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke before an answer came."""


class APITimeoutError(APIConnectionError):
    """No answer within the client's timeout."""


class APIStatusError(APIError):
    """The server answered with an error status; its problem+json fields are attributes."""

    status: int

    def __init__(self, response: httpx.Response, body: dict[str, Any]) -> None:
        self.response = response
        self.body = body
        self.status = response.status_code
        self.type: str = str(body.get("type") or "about:blank")
        self.title: str = str(body.get("title") or response.reason_phrase)
        self.detail: str = str(body.get("detail") or "")
        self.errors: list[Any] = list(body.get("errors") or [])
        self.request_id: str | None = response.headers.get("x-request-id")
        text = f"{self.status} {self.title}: {self.detail}" if self.detail else f"{self.status} {self.title}"
        super().__init__(text, request=response.request)


class BadRequestError(APIStatusError):
    """400: the request is malformed."""


class AuthenticationError(APIStatusError):
    """401: no API key, or one the server does not accept."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such thing in the key's organization (another org's ids answer 404 too)."""


class ConflictError(APIStatusError):
    """409: the change conflicts with what is stored."""


class PayloadTooLargeError(APIStatusError):
    """413: over a documented size limit."""


class UnsupportedMediaTypeError(APIStatusError):
    """415: a content type the server does not read."""


class UnprocessableEntityError(APIStatusError):
    """422: the body is well-formed but fails validation; ``errors`` lists the fields."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried by the client before it is raised."""


class InternalServerError(APIStatusError):
    """5xx: the server failed (502: an upstream such as the LLM failed; 503: unavailable)."""


class JobPendingError(APIError):
    """A call's background job (a large document's ingest) had not finished when the call stopped waiting;
    ``job`` is how it stood: follow it with ``client.jobs.wait(job.id)``."""

    def __init__(self, job: Any) -> None:
        super().__init__(f"job {job.id} ({job.kind}) is still {job.status}; follow it with client.jobs.wait")
        self.job = job


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def error_for(response: httpx.Response) -> APIStatusError:
    """The exception for an error response, from its problem+json body (or its text, if it has none)."""
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    body: dict[str, Any] = parsed if isinstance(parsed, dict) else {"detail": response.text[:2000]}
    cls = _BY_STATUS.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIStatusError
    return cls(response, body)

"""The one exception tree of Engram.

Every error a service raises is an :class:`EngramError`. Each class carries the HTTP status and the
RFC 9457 problem ``type`` slug it maps to; the API turns any of them into ``application/problem+json``
(``engramdb.api.problems``), the CLI prints ``detail`` and exits non-zero, and the SDK mirrors them.

    EngramError
    ├── InvalidRequest        400  the request cannot be understood (malformed JSON, bad cursor)
    │   └── ValidationFailed  422  well-formed but breaks a rule (types, limits, unknown fields)
    │       └── EmptyContent  422  a document with no text in it (an empty file, a scanned PDF)
    ├── Unauthenticated       401  no, malformed, unknown, expired or revoked API key
    ├── PermissionDenied      403  the key lacks the scope, or is bound to another user/agent/team
    ├── NotFound              404  no such resource in the caller's organization
    ├── Conflict              409  clashes with existing state (duplicate name, closed session)
    ├── PayloadTooLarge       413  the body is over ``ENGRAM_MAX_REQUEST_BYTES`` (or a document over its limit)
    ├── UnsupportedContent    415  binary, or a kind of document Engram does not read
    ├── RateLimited           429  a rate limit of the key or its organization is used up (``retry_after_s``)
    ├── LLMError              502  the configured LLM failed after retries (``providers.llm``)
    ├── ServiceUnavailable    503  the database is unreachable
    │   └── Overloaded        503  no database connection free soon enough, or too many texts waiting to be embedded
    └── ConfigurationError    ---  the process cannot start as configured (CLI and start-up only)
"""

from __future__ import annotations

from typing import Any, ClassVar


class EngramError(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class InvalidRequest(EngramError):
    status = 400
    slug = "invalid-request"
    title = "Invalid request"


class ValidationFailed(InvalidRequest):
    status = 422
    slug = "validation-failed"
    title = "Validation failed"


class Unauthenticated(EngramError):
    status = 401
    slug = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(EngramError):
    status = 403
    slug = "permission-denied"
    title = "Permission denied"


class NotFound(EngramError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(EngramError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PayloadTooLarge(EngramError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class ServiceUnavailable(EngramError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


class Overloaded(ServiceUnavailable):
    """Shed load rather than queue it without bound: the client retries after ``retry_after_s``."""

    slug = "overloaded"
    title = "Overloaded"
    retry_after_s = 1


class RateLimited(EngramError):
    """``limit`` requests per window are used up for now; ``reset_s`` until the next request would be
    allowed; ``retry_after_s`` (at least that) when to come back."""

    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, limit: int = 0, reset_s: int = 1, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.limit = limit
        self.reset_s = reset_s
        self.retry_after_s = max(1, reset_s, retry_after_s or 0)


class QueueFull(EngramError):
    """An organization has as much background work of one kind waiting as it may: retry when some is done."""

    status = 429
    slug = "queue-full"
    title = "Too much queued work"
    retry_after_s = 30


class ConfigurationError(EngramError):
    status = 500
    slug = "configuration-error"
    title = "Configuration error"


class UnsupportedContent(EngramError):
    status = 415
    slug = "unsupported-content"
    title = "Unsupported content"


class EmptyContent(ValidationFailed):
    status = 422
    slug = "empty-content"
    title = "Empty content"

"""Engram: self-hostable, multi-tenant long-term memory for AI agents, on one PostgreSQL.

The top level is the client's surface: ``Client`` and ``AsyncClient`` and the exceptions their calls
raise (``except engramdb.NotFoundError``). The server's own exceptions live in ``engramdb.errors``.
"""

from engramdb._version import __version__
from engramdb.config import Settings
from engramdb.sdk import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    InternalServerError,
    JobPendingError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "InternalServerError",
    "JobPendingError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "Settings",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "__version__",
]

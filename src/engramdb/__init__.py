"""Engram: self-hostable, multi-tenant long-term memory for AI agents, on one PostgreSQL."""

__version__ = "0.1.0"  # before the imports: the SDK reads it

from engramdb.config import Settings
from engramdb.errors import (
    Conflict,
    EngramError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
)
from engramdb.sdk import APIError, AsyncClient, Client

__all__ = [
    "APIError",
    "AsyncClient",
    "Client",
    "Conflict",
    "EngramError",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ServiceUnavailable",
    "Settings",
    "Unauthenticated",
    "ValidationFailed",
    "__version__",
]

"""Engram: self-hostable, multi-tenant long-term memory for AI agents, on one PostgreSQL."""

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

__version__ = "0.1.0"

__all__ = [
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

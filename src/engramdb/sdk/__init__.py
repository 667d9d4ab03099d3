"""Engram's Python SDK: ``Client`` (sync) and ``AsyncClient`` over httpx, typed with the API's models::

from engramdb import Client
with Client("http://127.0.0.1:8420", api_key="egm_…") as client:
    client.memories.create(external_user_id="alice", content="Alice is allergic to peanuts")
    hits = client.search(query="what is alice allergic to", external_user_id="alice")
"""

from engramdb.sdk._async.client import AsyncClient
from engramdb.sdk._async.pager import AsyncPager
from engramdb.sdk._sync.client import Client
from engramdb.sdk._sync.pager import Pager
from engramdb.sdk.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
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
    "AsyncPager",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "InternalServerError",
    "JobPendingError",
    "NotFoundError",
    "Pager",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
]

# Generated from engramdb/sdk/_async by scripts/unasync.py: edit the async code, then run the script.
"""The client and its retries. ``engramdb/sdk/_sync`` is generated from ``engramdb/sdk/_async`` by
``scripts/unasync.py``: edit the async code, then run that script (a test fails when they drift apart)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from engramdb.schemas.context import ContextRequest, ContextResponse
from engramdb.schemas.search import SearchRequest, SearchResponse
from engramdb.sdk import _common as c
from engramdb.sdk._sync import resources as r
from engramdb.sdk._sync.http import HTTP

T = TypeVar("T", bound=BaseModel)


class Client(HTTP):
    """Engram's API, with resource namespaces (``client.memories.create(...)``).

    ``base_url`` defaults to ``$ENGRAM_URL`` (else http://127.0.0.1:8420) and ``api_key`` to
    ``$ENGRAM_API_KEY``. Pass ``transport=httpx.ASGITransport(app=...)`` to drive an app in-process.
    Calls that cannot do harm when repeated are retried on 429, 502-504 and broken connections, up to
    ``max_retries`` times with exponential backoff (Retry-After honoured); any call is retried on 429.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = c.DEFAULT_TIMEOUT_S,
        max_retries: int = c.DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            transport=transport,
            headers=headers,
            http_client=http_client,
        )
        self.teams = r.Teams(self)
        self.users = r.Users(self)
        self.agents = r.Agents(self)
        self.apps = r.Apps(self)
        self.keys = r.Keys(self)
        self.limits = r.Limits(self)
        self.sessions = r.Sessions(self)
        self.messages = r.Messages(self)
        self.memories = r.Memories(self)
        self.facts = r.Facts(self)
        self.entities = r.Entities(self)
        self.predicates = r.Predicates(self)
        self.categories = r.Categories(self)
        self.jobs = r.Jobs(self)
        self.documents = r.Documents(self)
        self.repositories = r.Repositories(self)
        self.contexts = r.Contexts(self)
        self.tags = r.Tags(self)
        self.decay = r.Decay(self)
        self.audit = r.Audit(self)
        self.webhooks = r.Webhooks(self)
        self.data = r.Data(self)
        self.retention = r.Retention(self)
        self.legal_holds = r.LegalHolds(self)
        self.grants = r.Grants(self)
        self.tasks = r.Tasks(self)
        self.inbox = r.Inbox(self)
        self.organization = r.Organization(self)
        self.insights = r.Insights(self)

    @c.operation("get_health")
    def health(self) -> dict[str, Any]:
        """The server's health: database, embedder, version (no key needed)."""
        found: dict[str, Any] = (self.request("GET", "/v1/health")).json()
        return found

    @c.operation("get_liveness")
    def liveness(self) -> dict[str, Any]:
        """The liveness probe: the server process answers (no key, no database)."""
        found: dict[str, Any] = (self.request("GET", "/v1/health/live")).json()
        return found

    @c.operation("get_readiness")
    def readiness(self) -> dict[str, Any]:
        """The readiness probe: the database answers and its schema is current; raises
        ``APIStatusError`` (503) when not."""
        found: dict[str, Any] = (self.request("GET", "/v1/health/ready")).json()
        return found

    @c.operation("search")
    def search(self, request: SearchRequest | None = None, /, **fields: Any) -> SearchResponse:
        """Hybrid search over messages, memories, facts, entities, chunks and documents (``SearchRequest``)."""
        sent = c.body(SearchRequest, request, fields)
        return self.call(SearchResponse, "POST", "/v1/search", json=sent, idempotent=True)

    @c.operation("assemble_context")
    def context(self, request: ContextRequest | None = None, /, **fields: Any) -> ContextResponse:
        """A prompt-ready context block within ``token_budget`` (``ContextRequest``)."""
        sent = c.body(ContextRequest, request, fields)
        return self.call(ContextResponse, "POST", "/v1/context", json=sent, idempotent=True)

"""What a service needs besides the caller: the database, the embedder and the settings, built once."""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from engramdb.config import Settings
from engramdb.providers.embedder import CachedEmbedder, Embedder, create_embedder
from engramdb.providers.extraction.factory import Intelligence, create_intelligence
from engramdb.services.core.access import AccessTracker
from engramdb.storage.database import Database, in_request
from engramdb.storage.notify import Listener
from engramdb.storage.statements import Statements


class LargeScopes:
    """Search scopes recently found larger than the exact-scan limit, remembered for ``ttl_s`` so their
    rows are not counted again on every search. Being stale is safe: the index path falls back to an
    exact scan when a scope has shrunk."""

    def __init__(self, *, ttl_s: float = 60.0, size: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._size = size
        self._until: dict[Hashable, float] = {}

    def __contains__(self, key: Hashable) -> bool:
        until = self._until.get(key)
        return until is not None and until > time.monotonic()

    def add(self, key: Hashable) -> None:
        self._until.pop(key, None)
        if len(self._until) >= self._size:  # oldest first
            self._until.pop(next(iter(self._until)))
        self._until[key] = time.monotonic() + self._ttl_s


@dataclass(frozen=True)
class Runtime:
    db: Database
    embedder: Embedder
    settings: Settings
    access: AccessTracker
    intelligence: Intelligence
    listener: Listener  # the process's one LISTEN connection (live streams), opened on first use
    large_scopes: LargeScopes = field(default_factory=LargeScopes)
    statements: Statements = field(default_factory=Statements)  # search statements kept per scope

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: Database,
        *,
        embedder: Embedder | None = None,
        intelligence: Intelligence | None = None,
    ) -> Runtime:
        return cls(
            db=db,
            embedder=CachedEmbedder(
                embedder or create_embedder(settings), max_waiting=settings.embed_queue_texts, shed=in_request
            ),
            settings=settings,
            access=AccessTracker(db),
            intelligence=intelligence or create_intelligence(settings),
            listener=Listener(db.url),
        )

    async def close(self) -> None:
        """Release what the providers hold open (the LLM client's connections) and the LISTEN connection."""
        await self.listener.close()
        await self.intelligence.close()

    async def warm(self) -> None:
        """Load the embedding model now rather than on the first request."""
        await self.embedder.embed_batch(["warm-up"], kind="query")

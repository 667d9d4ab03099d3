"""What a service needs besides the caller: the database, the embedder and the settings, built once."""

from __future__ import annotations

from dataclasses import dataclass

from engramdb.config import Settings
from engramdb.providers.embedder import CachedEmbedder, Embedder, create_embedder
from engramdb.services.access import AccessTracker
from engramdb.storage.database import Database


@dataclass(frozen=True)
class Runtime:
    db: Database
    embedder: Embedder
    settings: Settings
    access: AccessTracker

    @classmethod
    def build(cls, settings: Settings, db: Database, *, embedder: Embedder | None = None) -> Runtime:
        return cls(
            db=db,
            embedder=CachedEmbedder(embedder or create_embedder(settings)),
            settings=settings,
            access=AccessTracker(db),
        )

    async def warm(self) -> None:
        """Load the embedding model now rather than on the first request."""
        await self.embedder.embed_batch(["warm-up"], kind="query")


def message_embedding_text(name: str | None, content: str) -> str:
    """What is embedded for a message: the speaker's name gives the turn its context."""
    return f"{name}: {content}" if name else content

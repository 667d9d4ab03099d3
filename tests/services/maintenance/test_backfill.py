"""The embedding backfill: deferred rows get vectors, and one row the embedder refuses holds nothing up."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
import pytest

from engramdb.config import Settings
from engramdb.errors import ConfigurationError
from engramdb.providers.embedder import HashEmbedder, Kind
from engramdb.schemas.conversations import MessageBatch, SessionCreate
from engramdb.services.conversation import messages, sessions
from engramdb.services.core.runtime import Runtime
from engramdb.services.maintenance import backfill
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database
from engramdb.storage.migrate import check_language


class Picky(HashEmbedder):
    """Refuses any text containing POISON, as a provider refuses an over-long input."""

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        if any("POISON" in t for t in texts):
            raise ValueError("input refused")
        return await super().embed_batch(texts, kind=kind)


async def test_a_poisoned_row_is_marked_and_the_rest_embedded(db: Database, database_url: str) -> None:
    rt = Runtime.build(Settings(database_url=database_url), db, embedder=Picky(384))
    rows = []
    for name in ("first", "second"):
        org, key = await keys.create_organization(db, name=f"backfill-{name}")
        caller = await keys.authenticate(db, key.api_key)
        s = await sessions.create(db, caller, SessionCreate())
        contents = ["POISON pill", "fine text"] if name == "first" else ["another org's text"]
        batch = MessageBatch(defer_embedding=True, messages=[{"role": "user", "content": c} for c in contents])
        added, _ = await messages.add(rt, caller, s.id, batch)
        rows += added
    assert await backfill.count_pending(rt, other_models=False) == 3
    assert await backfill.backfill(rt, batch_size=2) == 3
    assert await backfill.count_pending(rt, other_models=False) == 0
    with psycopg.connect(database_url) as conn:
        models = dict(conn.execute("SELECT content, embedding_model FROM message").fetchall())
    assert models == {"POISON pill": "failed:hash-384", "fine text": "hash-384", "another org's text": "hash-384"}
    # `engramdb reembed` (other models) retries the failed row once per run and then stops.
    assert await backfill.backfill(rt, other_models=True) == 1


def test_search_language_is_checked(database_url: str) -> None:
    check_language(database_url, "english")
    with pytest.raises(ConfigurationError, match="klingon"):
        check_language(database_url, "klingon")

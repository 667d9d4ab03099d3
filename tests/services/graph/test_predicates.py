"""The predicate catalogue as extraction uses it: the organization's cardinality of a predicate decides
whether a new fact closes the current one, over the extractor's own guess, and only in that organization."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from engramdb.config import Settings
from engramdb.providers.embedder import HashEmbedder
from engramdb.providers.extraction import Extraction, FactCandidate, Turn
from engramdb.providers.extraction.factory import Intelligence
from engramdb.providers.extraction.offline import OfflineSummarizer
from engramdb.providers.extraction.offline_patterns import find_facts
from engramdb.providers.extraction.predicates import BUILTIN, BuiltinPredicate
from engramdb.schemas.conversations import MessageBatch, SessionCreate
from engramdb.schemas.graph import FactFilters, PredicateUpdate
from engramdb.services.conversation import messages, sessions
from engramdb.services.core.caller import Caller
from engramdb.services.core.runtime import Runtime
from engramdb.services.distill import extraction
from engramdb.services.graph import facts, predicates
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database


class Guessing:
    """Reads each turn as ``predicate: object`` and guesses single-valued for ``likes`` alone (wrongly, as
    an LLM may: the catalogue holds likes many-valued, lives_in single-valued)."""

    name = "guessing"

    async def extract(
        self, turns: Sequence[Turn], *, context: Sequence[Turn] = (), categories: Sequence[str] = ()
    ) -> Extraction:
        found = []
        for turn in turns:
            predicate, obj = turn.content.split(": ")
            found.append(FactCandidate("Zed", predicate, obj, (turn.id,), single_valued=predicate == "likes"))
        return Extraction(memories=[], facts=found)


async def _org(db: Database) -> tuple[uuid.UUID, Caller]:
    org, key = await keys.create_organization(db, name=f"predicates-{uuid.uuid4().hex[:8]}")
    return org.id, await keys.authenticate(db, key.api_key)


async def _extract(rt: Runtime, org_id: uuid.UUID, caller: Caller, lines: list[str]) -> set[tuple[str, str]]:
    """Extract ``lines`` (Zed's, a year apart) in one job; the (predicate, object) pairs valid now."""
    s = await sessions.create(rt.db, caller, SessionCreate())
    said = [
        {"role": "user", "name": "Zed", "content": line, "occurred_at": datetime(2020 + i, 1, 1, tzinfo=UTC)}
        for i, line in enumerate(lines)
    ]
    _, job_id = await messages.add(rt, caller, s.id, MessageBatch.model_validate({"messages": said}))
    assert job_id is not None
    assert await extraction.run(rt, org_id, job_id, attempt=1, final=True) is not None
    page = await facts.list_facts(rt, caller, FactFilters(subject="Zed", limit=200))
    return {(f.predicate, f.object) for f in page.data if f.valid_until is None}


@pytest.fixture(scope="module")
def rt(db: Database, database_url: str) -> Runtime:
    return Runtime.build(Settings(database_url=database_url), db, embedder=HashEmbedder(384))


async def test_the_offline_extractor_honours_an_organizations_override(rt: Runtime, db: Database) -> None:
    moving = ["I live in Berlin.", "I moved to Lisbon."]
    org_id, caller = await _org(db)
    await predicates.upsert(rt, caller, "lives_in", PredicateUpdate(cardinality="many"))
    assert await _extract(rt, org_id, caller, moving) == {("lives_in", "Berlin"), ("lives_in", "Lisbon")}
    # Another organization keeps the built-in: the move closes the old home.
    other_id, other = await _org(db)
    assert await _extract(rt, other_id, other, moving) == {("lives_in", "Lisbon")}


async def test_the_catalogue_wins_over_the_extractors_guess(rt: Runtime, db: Database) -> None:
    guessing = Runtime.build(
        rt.settings, db, embedder=HashEmbedder(384), intelligence=Intelligence(Guessing(), OfflineSummarizer(), False)
    )
    org_id, caller = await _org(db)
    await predicates.upsert(rt, caller, "drives", PredicateUpdate(cardinality="one"))
    lines = ["drives: a Volvo", "drives: a Saab", "likes: tea", "likes: jazz", "lives_in: Oslo", "lives_in: Bergen"]
    assert await _extract(guessing, org_id, caller, lines) == {
        ("drives", "a Saab"),
        ("likes", "tea"),
        ("likes", "jazz"),
        ("lives_in", "Bergen"),
    }


def test_the_offline_rules_read_the_builtin_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline extractor's rules and the catalogue share one list: changing it changes both."""
    for sentence, single in (
        ("I live in Berlin.", True),
        ("I love hiking.", False),
        ("I used to live in Rome.", False),
    ):
        (found,) = find_facts(sentence, "Zed")
        assert found.single_valued is single, sentence
    monkeypatch.setitem(BUILTIN, "lives_in", BuiltinPredicate("many", "homes"))
    monkeypatch.setitem(BUILTIN, "likes", BuiltinPredicate("one", "the one thing someone likes"))
    for sentence, single in (
        ("I live in Berlin.", False),
        ("I love hiking.", True),
        ("I used to live in Rome.", False),
    ):
        (found,) = find_facts(sentence, "Zed")
        assert found.single_valued is single, sentence

"""Part vectors: a message is embedded sentence by sentence and together with the previous turn, its own
vector is its sentences' normalized mean, and search scores it by its best part on every path (exact
scan, HNSW index, backfill of deferred messages)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from engramdb.config import Settings
from engramdb.providers.embedder import HashEmbedder
from engramdb.providers.minilm import MiniLMEmbedder
from engramdb.schemas.conversations import MessageBatch, SessionCreate
from engramdb.schemas.search import SearchRequest
from engramdb.services.conversation import messages, sessions
from engramdb.services.conversation.vectors import (
    CONTEXT_WORDS,
    MAX_SENTENCES,
    MessageText,
    context_text,
    embed_messages,
    message_embedding_text,
    sentences,
)
from engramdb.services.core.runtime import Runtime
from engramdb.services.maintenance import backfill
from engramdb.services.search import hybrid as search
from engramdb.services.search import retrievers
from engramdb.services.tenancy import keys
from engramdb.storage.database import Database

WHEN = datetime(2024, 5, 1, tzinfo=UTC)
LONG = "Congrats on the new job! I started a weekend yoga class with a colleague last month. How is the shelter?"


def test_sentences_split_on_sentence_ends_and_line_breaks() -> None:
    assert sentences("Hi there! I moved to Lisbon. Do you like it?") == [
        "Hi there!",
        "I moved to Lisbon.",
        "Do you like it?",
    ]
    assert sentences("first line\nsecond line") == ["first line", "second line"]
    assert sentences("no end punctuation") == ["no end punctuation"]
    assert sentences("   ") == ["   "]
    many = " ".join(f"Sentence {i}." for i in range(40))
    parts = sentences(many)
    assert len(parts) == MAX_SENTENCES
    assert parts[-1].startswith(f"Sentence {MAX_SENTENCES - 1}.") and parts[-1].endswith("Sentence 39.")


async def test_one_sentence_keeps_its_vector_and_several_average() -> None:
    embedder = HashEmbedder(64)
    one, several = await embed_messages(
        embedder, [MessageText("Ann", "Just one sentence here", WHEN), MessageText("Ann", LONG, WHEN)]
    )
    (expected,) = await embedder.embed_batch([message_embedding_text("Ann", "Just one sentence here", WHEN)])
    assert one.part_embeddings is None and one.embedding == expected
    parts = [message_embedding_text("Ann", p, WHEN) for p in sentences(LONG)]
    assert several.part_embeddings == await embedder.embed_batch(parts)
    mean = [sum(c) / len(parts) for c in zip(*several.part_embeddings, strict=True)]
    norm = math.sqrt(sum(x * x for x in mean))
    assert several.embedding == pytest.approx([x / norm for x in mean])


async def test_fewer_parts_when_configured() -> None:
    embedder = HashEmbedder(64)
    reply = MessageText("Ann", LONG, WHEN, previous=("Bo", "Any news?"))
    (whole,) = await embed_messages(embedder, [reply], "turn")
    assert whole.part_embeddings is None and whole.context_embedding is None
    assert [whole.embedding] == await embedder.embed_batch([message_embedding_text("Ann", LONG, WHEN)])
    (split,) = await embed_messages(embedder, [reply], "sentences")
    assert split.part_embeddings is not None and len(split.part_embeddings) == len(sentences(LONG))
    assert split.context_embedding is None


def test_a_long_previous_turn_never_crowds_out_the_message() -> None:
    long_turn = " ".join(f"word{i}" for i in range(500))
    text = context_text(MessageText("Ann", "Yes!", WHEN, previous=("Bo", long_turn))) or ""
    assert text.endswith("Yes!") and "word499" in text and "word439" not in text
    assert len(text.split()) < CONTEXT_WORDS + 10


async def test_a_winner_deleted_meanwhile_is_left_out(db: Database, database_url: str) -> None:
    org, _ = await keys.create_organization(db, name=f"sentences-gone-{uuid.uuid4().hex[:6]}")
    gone = retrievers.Hit("message", {"id": uuid.uuid4()})
    async with db.tenant(org.id) as conn:
        assert await retrievers.hydrate(conn, [gone]) == []


async def test_a_reply_also_gets_a_vector_in_context() -> None:
    embedder = HashEmbedder(64)
    reply = MessageText("Ann", "Yes, last Tuesday!", WHEN, previous=("Bo", "Did you adopt the puppy?"))
    assert context_text(reply) == message_embedding_text("Ann", "Bo: Did you adopt the puppy? Yes, last Tuesday!", WHEN)
    (vectors,) = await embed_messages(embedder, [reply])
    own, in_context = await embedder.embed_batch(
        [message_embedding_text("Ann", "Yes, last Tuesday!", WHEN), context_text(reply) or ""]
    )
    assert vectors.embedding == own  # the message's own vector ignores the context
    assert vectors.part_embeddings is None and vectors.context_embedding == in_context


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


@pytest.mark.parametrize("exact_limit", [20_000, 0], ids=["exact-scan", "hnsw-index"])
async def test_search_scores_a_message_by_its_best_sentence(  # type: ignore[no-untyped-def]
    db: Database, database_url: str, embedder: MiniLMEmbedder, exact_limit: int
) -> None:
    rt = Runtime.build(Settings(database_url=database_url, exact_search_limit=exact_limit), db, embedder=embedder)
    org, key = await keys.create_organization(db, name=f"sentences-{exact_limit}")
    caller = await keys.authenticate(db, key.api_key)
    s = await sessions.create(db, caller, SessionCreate())
    filler = [f"We talked about the weather on day {i}." for i in range(30)]
    batch = MessageBatch(
        messages=[{"role": "user", "name": "Maria", "content": c, "occurred_at": WHEN} for c in [LONG, *filler]]
    )
    (long_message, *_), _ = await messages.add(rt, caller, s.id, batch)
    query = "What exercise did she take up?"
    req = SearchRequest(
        query=query,
        mode="vector",
        types=["messages"],
        top_k=5,
        candidates=10,
        explain=True,
        weights={"neighbor": 0, "reply": 0, "length": 0},  # the vector score alone (LONG asks: its reply would rise)
    )
    response, _ = await search.search(rt, caller, req)
    hit = next(r for r in response.results if r.id == long_message.id)
    (q,) = await embedder.embed_batch([query], kind="query")
    parts = [message_embedding_text("Maria", p, WHEN) for p in sentences(LONG)]
    best = max(_cosine(q, v) for v in await embedder.embed_batch(parts))
    (whole,) = await embed_messages(embedder, [MessageText("Maria", LONG, WHEN)])
    assert hit.explanation is not None
    assert hit.explanation.vector_method == ("exact" if exact_limit else "hnsw")
    assert hit.explanation.vector_similarity == pytest.approx(max(best, _cosine(q, whole.embedding)), abs=1e-4)
    assert best > _cosine(q, whole.embedding)  # the yoga sentence beats the blurred whole turn
    assert response.results[0].id == long_message.id


async def test_backfill_stores_sentence_vectors(db: Database, database_url: str) -> None:
    rt = Runtime.build(Settings(database_url=database_url), db, embedder=HashEmbedder(384))
    org, key = await keys.create_organization(db, name=f"sentences-backfill-{uuid.uuid4().hex[:6]}")
    caller = await keys.authenticate(db, key.api_key)
    s = await sessions.create(db, caller, SessionCreate())
    batch = MessageBatch(defer_embedding=True, messages=[{"role": "user", "content": c} for c in (LONG, "One.")])
    await messages.add(rt, caller, s.id, batch)
    await backfill.backfill(rt)
    with psycopg.connect(database_url) as conn:
        counts = {
            content: (parts, context)
            for content, parts, context in conn.execute(
                "SELECT content, array_length(part_embeddings, 1), context_embedding IS NOT NULL FROM message "
                "WHERE org_id = %s",
                (org.id,),
            ).fetchall()
        }
    # LONG opens the session (sentences, no context); "One." is one sentence, with itself after LONG.
    assert counts == {LONG: (len(sentences(LONG)), False), "One.": (None, True)}


async def test_the_first_message_of_a_batch_follows_the_sessions_last_turn(db: Database, database_url: str) -> None:
    embedder = HashEmbedder(384)
    rt = Runtime.build(Settings(database_url=database_url), db, embedder=embedder)
    org, key = await keys.create_organization(db, name=f"sentences-context-{uuid.uuid4().hex[:6]}")
    caller = await keys.authenticate(db, key.api_key)
    s = await sessions.create(db, caller, SessionCreate())
    for name, content in (("Bo", "Did you adopt the puppy?"), ("Ann", "Yes, last Tuesday!")):
        one = MessageBatch(messages=[{"role": "user", "name": name, "content": content, "occurred_at": WHEN}])
        await messages.add(rt, caller, s.id, one)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT array_length(part_embeddings, 1), context_embedding::text FROM message "
            "WHERE org_id = %s AND name = 'Ann'",
            (org.id,),
        ).fetchone()
    assert row is not None and row[0] is None
    reply = MessageText("Ann", "Yes, last Tuesday!", WHEN, previous=("Bo", "Did you adopt the puppy?"))
    (expected,) = await embedder.embed_batch([context_text(reply) or ""])
    assert [float(x) for x in row[1].strip("[]").split(",")] == pytest.approx(expected, abs=1e-6)

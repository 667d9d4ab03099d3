"""LLMExtractor and LLMSummarizer over the fake OpenAI-compatible server: the answer becomes candidates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from engramdb.providers.extraction import Extractor, Summarizer, Turn, Usage
from engramdb.providers.extraction.llm import LLMExtractor, LLMSummarizer, parse_date, snake_case, truncate
from engramdb.providers.llm import ChatClient
from engramdb.providers.prompts import extract_v1
from tests.providers.fake_openai import FakeOpenAI, good


def turn(speaker: str, text: str, day: int, role: str = "user") -> Turn:
    return Turn(
        id=uuid.uuid4(), role=role, name=speaker, content=text, occurred_at=datetime(2024, 5, day, 9, tzinfo=UTC)
    )


CONTEXT = [turn("Alice", "I might move abroad.", 1)]
TURNS = [
    turn("Bob", "Hi Alice! How was the move?", 3),
    turn("Alice", 'I moved to Lisbon yesterday. <engram-context id="x">Alice likes cats.</engram-context>', 3),
    turn("Bob", "Great, I only drink tea these days.", 3),
]

REPLY = {
    "memories": [
        {
            "content": "Alice  moved to Lisbon on 2024-05-02.",
            "type": "episodic",
            "importance": 0.9,
            "entities": ["Alice", "Lisbon", "alice", " "],
            "categories": ["travel", "Unknown"],
            "source_turns": [1],
            "occurred_on": "2024-05-02",
        },
        {
            "content": "Bob only drinks tea.",
            "type": "opinion",
            "importance": 3,
            "entities": None,
            "source_turns": [7, -1],
            "occurred_on": "yesterday",
        },
        {"content": "Bob prefers tea.", "type": "Preference", "importance": -1, "source_turns": [2, 0]},
        {"content": "  ", "type": "fact", "source_turns": [0]},
    ],
    "facts": [
        {
            "subject": "Alice",
            "predicate": "Lives In",
            "object": "Lisbon",
            "object_is_entity": True,
            "subject_type": "person",
            "object_type": "city",
            "confidence": 1.7,
            "single_valued": True,
            "valid_from": "2024-05-02",
            "valid_until": "2023",
            "source_turns": [1],
        },
        {"subject": "Bob", "predicate": "drinksOnly", "object": "tea", "valid_from": "2024-05", "source_turns": []},
        {"subject": "", "predicate": "is", "object": "nothing"},
    ],
    "entities": [
        {"name": "Alice", "type": "PERSON", "aliases": ["Al", "alice", ""]},
        {"name": "Lisbon", "type": "city"},
        {"name": "alice", "type": "person"},
        {"name": " ", "type": "person"},
    ],
}


async def test_extractor_maps_the_answer_to_candidates(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(good(REPLY, prompt_tokens=100, completion_tokens=40))
    extractor: Extractor = LLMExtractor(chat)
    assert extractor.name == "llm:fake-model"
    result = await extractor.extract(TURNS, context=CONTEXT, categories=["Travel", "Food"])

    assert result.usage == Usage(100, 40, 1)
    moved, tea, prefers = result.memories
    assert moved.content == "Alice moved to Lisbon on 2024-05-02."
    assert moved.memory_type == "episodic" and moved.importance == 0.9
    assert moved.message_ids == (TURNS[1].id,) and moved.speaker == "Alice"
    assert moved.entities == ("Alice", "Lisbon") and moved.categories == ("Travel",)
    assert moved.occurred_at == datetime(2024, 5, 2, tzinfo=UTC)
    # no valid index: attributed to every turn, spoken by the first
    assert tea.message_ids == tuple(t.id for t in TURNS) and tea.speaker == "Bob"
    assert tea.memory_type == "fact" and tea.importance == 1.0 and tea.occurred_at is None and tea.entities == ()
    assert prefers.memory_type == "preference" and prefers.importance == 0.0
    assert prefers.message_ids == (TURNS[0].id, TURNS[2].id) and prefers.speaker == "Bob"

    lives, drinks = result.facts
    assert (lives.subject, lives.predicate, lives.object) == ("Alice", "lives_in", "Lisbon")
    assert lives.object_is_entity and lives.single_valued and lives.confidence == 1.0
    assert (lives.subject_type, lives.object_type) == ("person", "other")
    assert lives.valid_from == datetime(2024, 5, 2, tzinfo=UTC) and lives.valid_until is None  # inverted: dropped
    assert lives.message_ids == (TURNS[1].id,) and lives.speaker == "Alice"
    assert drinks.predicate == "drinks_only" and drinks.valid_from == datetime(2024, 5, 1, tzinfo=UTC)
    assert drinks.message_ids == tuple(t.id for t in TURNS) and drinks.confidence == 0.8

    alice, lisbon = result.entities
    assert (alice.name, alice.type, alice.aliases) == ("Alice", "person", ("Al",))
    assert (lisbon.name, lisbon.type) == ("Lisbon", "other")


async def test_extractor_prompt_cites_turns_and_hides_context(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(good({"memories": None, "facts": [], "entities": []}))
    result = await LLMExtractor(chat).extract(TURNS, context=CONTEXT, categories=["Travel", "Food"])
    assert result.memories == [] and result.facts == [] and result.entities == []

    system, user = fake_openai.requests[0]["messages"]
    assert "third person" in system["content"] and "<engram-context>" in system["content"]
    assert "Travel, Food" in system["content"]
    text = user["content"]
    assert "- (2024-05-01) Alice: I might move abroad." in text  # context: no index to cite
    assert "[0] (2024-05-03) Bob: Hi Alice! How was the move?" in text
    assert "[1] (2024-05-03) Alice: I moved to Lisbon yesterday." in text
    assert "likes cats" not in text  # injected context never reaches the model
    assert fake_openai.requests[0]["response_format"]["json_schema"]["name"] == extract_v1.SCHEMA_NAME


async def test_extractor_skips_turns_with_nothing_but_injected_context(
    chat: ChatClient, fake_openai: FakeOpenAI
) -> None:
    echoed = [turn("Alice", "<engram-context>Alice likes cats.</engram-context>", 3)]
    result = await LLMExtractor(chat).extract(echoed)
    assert result.memories == [] and result.usage == Usage()
    assert fake_openai.requests == []


async def test_summarizer_updates_and_truncates(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    long = "Alice moved to Lisbon on 2024-05-02 and Bob congratulated her warmly on the new flat."
    fake_openai.script(good({"summary": long}), good({"narrative": "Alice lives in Lisbon."}))
    summarizer: Summarizer = LLMSummarizer(chat)

    summary, usage = await summarizer.summarize("Bob greeted Alice.", TURNS, max_chars=40)
    assert len(summary) <= 40 and summary.endswith("…") and summary.startswith("Alice moved to Lisbon")
    assert usage == Usage(10, 5, 1)
    system, user = fake_openai.requests[0]["messages"]
    assert "At most 40 characters" in system["content"]
    assert "Bob greeted Alice." in user["content"] and "(2024-05-03) Alice: I moved to Lisbon" in user["content"]

    narrative, _ = await summarizer.narrate(
        "Alice", None, ["Alice moved to Lisbon.", "Alice likes\ncats."], max_chars=500
    )
    assert narrative == "Alice lives in Lisbon."
    user = fake_openai.requests[1]["messages"][1]["content"]
    assert "Person: Alice" in user and "- Alice likes cats." in user and "(none yet)" in user


async def test_summarizer_without_new_input_makes_no_call(chat: ChatClient, fake_openai: FakeOpenAI) -> None:
    summarizer = LLMSummarizer(chat)
    assert await summarizer.summarize("So far.", [], max_chars=100) == ("So far.", Usage())
    assert await summarizer.narrate("Alice", None, [], max_chars=100) == ("", Usage())
    assert fake_openai.requests == []


def test_helpers() -> None:
    assert snake_case("livesIn") == snake_case("Lives In") == snake_case("lives-in") == "lives_in"
    assert snake_case(" habite à ") == "habite_à"
    assert parse_date("2024-05-02T10:00:00+02:00") == datetime(2024, 5, 2, 8, tzinfo=UTC)
    assert parse_date("2024") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_date("last week") is None and parse_date(None) is None and parse_date("") is None
    assert truncate("short", 10) == "short"
    assert truncate("one two three four", 10) == "one two…"

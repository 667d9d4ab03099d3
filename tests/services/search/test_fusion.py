"""Fusion of the retrievers' lists (services/search/fusion.py), on hand-made candidates: no database."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from engramdb.schemas.search import ScoreExplanation, SearchRequest
from engramdb.services.search import fusion
from engramdb.services.search.retrievers import Hit

WHEN = datetime(2024, 3, 2, 10, tzinfo=UTC)


def _message(session: uuid.UUID, seq: int, name: str = "Alice", **ranks: Any) -> Hit:
    row = {"id": uuid.uuid4(), "session_id": session, "seq": seq, "name": name, "occurred_at": WHEN}
    return Hit("message", row, **ranks)


def _request(**weights: float) -> SearchRequest:
    return SearchRequest.model_validate({"query": "what did Bob cook", "weights": weights})


def _fused(req: SearchRequest, *hits: Hit) -> list[fusion.Scored]:
    return fusion.fuse(req, {(h.kind, h.row["id"]): h for h in hits}, None, {})


def test_reciprocal_rank_fusion_counts_each_list_by_its_weight() -> None:
    s = uuid.uuid4()
    both = _message(s, 1, vector_rank=1, keyword_rank=2)
    memory_only = _message(s, 2, memory_rank=1)
    req = _request(session=0, name_match=0, time=0, memory=0.5, keyword=2.0)
    (first, second) = _fused(req, memory_only, both)
    k = req.rrf_k
    assert first[1] is both and first[0] == pytest.approx(1 / (k + 1) + 2.0 / (k + 2))
    assert second[1] is memory_only and second[0] == pytest.approx(0.5 / (k + 1))
    assert second[2]["memory_rank"] == 1 and second[2]["vector_rank"] is None


def test_the_parts_are_exactly_the_explanations_fields() -> None:
    s = uuid.uuid4()
    scored = _fused(_request(), _message(s, 1, name="Bob", vector_rank=1), _message(s, 2, keyword_rank=1))
    for final, _, parts in scored:
        assert set(parts) <= set(ScoreExplanation.model_fields)  # a misspelt key would be dropped silently
        assert ScoreExplanation(**parts).final == final
    bob = next(parts for _, hit, parts in scored if hit.row["name"] == "Bob")
    assert bob["name_match"] is True


def test_a_speaker_the_query_names_rises() -> None:
    s = uuid.uuid4()
    alice, bob = _message(s, 1, "Alice", vector_rank=1), _message(s, 2, "Bob", vector_rank=2)
    scored = _fused(_request(session=0, time=0, name_match=1.0), alice, bob)
    assert [hit for _, hit, _ in scored] == [bob, alice]  # 1/(k+2) + 1 × 1/(k+1) beats 1/(k+1)


def test_a_memory_that_names_the_speaker_the_query_names_rises_with_their_turns() -> None:
    s = uuid.uuid4()
    turn = _message(s, 1, "Bob", vector_rank=1)
    about_bob = Hit("memory", {"id": uuid.uuid4(), "content": "bob cooks paella on Sundays"}, vector_rank=2)
    about_alice = Hit("memory", {"id": uuid.uuid4(), "content": "Alice cooks"}, vector_rank=3)
    req = _request(session=0, time=0)
    scored = {hit.row["id"]: (final, parts) for final, hit, parts in _fused(req, turn, about_bob, about_alice)}
    assert scored[turn.row["id"]][1]["name_match"] and scored[about_bob.row["id"]][1]["name_match"]
    assert scored[about_bob.row["id"]][0] == pytest.approx(1 / (5 + 2) + 0.6 / (5 + 1))  # name_match 0.6
    assert scored[about_alice.row["id"]][1]["name_match"] is False
    assert scored[about_alice.row["id"]][0] == pytest.approx(1 / (5 + 3))
    # Without a turn of Bob's among the candidates nothing says Bob is a speaker: no memory gains.
    alone = _fused(_request(session=0, time=0), about_bob)
    assert alone[0][2]["name_match"] is None and alone[0][0] == pytest.approx(1 / (5 + 2))


def test_signals_are_added_in_units_of_a_first_place_whatever_rrf_k() -> None:
    """The speaker is evidence of its own: a turn far down one list that the query's speaker said can pass a
    better-ranked turn of someone else, which a factor on its small fused score could not do."""
    for k in (5, 60):
        s = uuid.uuid4()
        alice, bob = _message(s, 1, "Alice", vector_rank=3), _message(s, 2, "Bob", keyword_rank=20)
        req = SearchRequest.model_validate(
            {"query": "what did Bob cook", "rrf_k": k, "weights": {"session": 0, "time": 0, "name_match": 0.6}}
        )
        scored = {hit.row["name"]: final for final, hit, _ in _fused(req, alice, bob)}
        assert scored["Alice"] == pytest.approx(1 / (k + 3))
        assert scored["Bob"] == pytest.approx(1 / (k + 20) + 0.6 / (k + 1))
        assert scored["Bob"] > scored["Alice"]


def test_turns_of_the_sessions_holding_the_strongest_hits_gain_and_other_hits_are_not_pushed_down() -> None:
    strong, weak = uuid.uuid4(), uuid.uuid4()
    hits = [_message(strong, 1, vector_rank=1), _message(strong, 2, vector_rank=2), _message(weak, 1, vector_rank=3)]
    memory = Hit("memory", {"id": uuid.uuid4(), "created_at": WHEN, "occurred_at": None}, vector_rank=4)
    req = _request(name_match=0, time=0, session=0.5)
    scored = {hit.row["id"]: (final, parts) for final, hit, parts in _fused(req, *hits, memory)}
    k = req.rrf_k
    first = 1 / (k + 1)
    best, other = scored[hits[0].row["id"]], scored[hits[2].row["id"]]
    assert best[1]["session"] == 1.0 and best[0] == pytest.approx(first + 0.5 * first)
    share = (1 / (k + 3)) / (1 / (k + 1) + 1 / (k + 2))
    assert other[1]["session"] == pytest.approx(share)
    assert other[0] == pytest.approx(1 / (k + 3) + 0.5 * first * share)
    # A memory written directly has no session to vote for: it counts as in the best session.
    assert scored[memory.row["id"]][1]["session"] == 1.0
    assert scored[memory.row["id"]][0] == pytest.approx(1 / (k + 4) + 0.5 * first)
    # One drawn from the weaker session gains that session's share, as its turns do.
    drawn = Hit("memory", {"id": uuid.uuid4(), "session_id": weak, "content": "x"}, vector_rank=4)
    scored = {hit.row["id"]: (final, parts) for final, hit, parts in _fused(req, *hits, drawn)}
    assert scored[drawn.row["id"]][1]["session"] == pytest.approx(share)
    assert scored[drawn.row["id"]][0] == pytest.approx(1 / (k + 4) + 0.5 * first * share)


def test_no_strong_hit_leaves_the_session_signal_out() -> None:
    s = uuid.uuid4()
    req = _request(vector=0, keyword=0, memory=0, name_match=0, time=0)
    ((final, _, parts),) = _fused(req, _message(s, 1, vector_rank=1))
    assert final == 0.0 and "session" not in parts


def test_a_reply_gains_a_share_of_its_questions_score_and_gains_do_not_compound() -> None:
    s = uuid.uuid4()
    question = _message(s, 1, vector_rank=1)
    answer_found = _message(s, 2, vector_rank=5)  # also a question: its own reply gains from its score before
    scored = _fused(_request(session=0, name_match=0, time=0), question, answer_found)
    before = {hit.row["id"]: final for final, hit, _ in scored}
    unseen = {"id": uuid.uuid4(), "session_id": s, "seq": 3, "name": "Bob", "occurred_at": WHEN}
    replies = [
        {**answer_found.row, "question_id": question.row["id"]},
        {**unseen, "question_id": answer_found.row["id"]},
    ]
    fusion.answers(scored, replies, 0.4)
    after = {hit.row["id"]: (final, parts) for final, hit, parts in scored}
    gain = 0.4 * before[question.row["id"]]
    assert after[answer_found.row["id"]][0] == pytest.approx(before[answer_found.row["id"]] + gain)
    # The turn no retriever found joins, with 0.4 × the score its question had before any gain.
    assert after[unseen["id"]][0] == pytest.approx(0.4 * before[answer_found.row["id"]])
    assert after[unseen["id"]][1] == {
        "rrf": 0.0,
        "final": after[unseen["id"]][0],
        "reply": pytest.approx(0.4 * before[answer_found.row["id"]]),
    }
    assert [final for final, _, _ in scored] == sorted((final for final, _, _ in scored), reverse=True)


def test_a_turn_longer_than_the_median_candidate_gains_a_shorter_one_loses_and_other_kinds_keep_their_score() -> None:
    s = uuid.uuid4()
    short, middle, long = (_message(s, seq, vector_rank=seq) for seq in (1, 2, 3))
    for hit, words in ((short, 1), (middle, 9), (long, 29)):
        hit.row["content"] = " ".join(["word"] * words)
    memory = Hit("memory", {"id": uuid.uuid4(), "content": "Alice cooks", "importance": 0.5}, vector_rank=4)
    req = _request(session=0, name_match=0, time=0)
    scored = _fused(req, short, middle, long, memory)
    before = {hit.row["id"]: final for final, hit, _ in scored}
    gain = 0.3 / (req.rrf_k + 1)
    fusion.by_length(scored, gain)
    after = {hit.row["id"]: (final, parts) for final, hit, parts in scored}
    for hit, change in ((short, math.log(2 / 10)), (middle, 0.0), (long, math.log(30 / 10))):
        assert after[hit.row["id"]][1]["length"] == pytest.approx(gain * change)
        assert after[hit.row["id"]][0] == pytest.approx(before[hit.row["id"]] + gain * change)
        assert ScoreExplanation(**after[hit.row["id"]][1]).length == pytest.approx(gain * change)
    assert after[memory.row["id"]][0] == before[memory.row["id"]] and "length" not in after[memory.row["id"]][1]
    # The long turn, third by its lists, now leads; the short one falls below the memory.
    assert [hit for _, hit, _ in scored] == [long, middle, memory, short]


def test_no_message_among_the_candidates_leaves_the_length_signal_out() -> None:
    memory = Hit("memory", {"id": uuid.uuid4(), "content": "Alice cooks", "importance": 0.5}, vector_rank=1)
    scored = _fused(_request(), memory)
    fusion.by_length(scored, 0.1)
    assert scored[0][0] == scored[0][2]["final"] and "length" not in scored[0][2]


def test_a_reply_that_joined_counts_in_the_median_and_words_count_up_to_a_long_turn() -> None:
    s = uuid.uuid4()
    question = _message(s, 1, vector_rank=1)
    question.row["content"] = "What did you cook?"  # 4 words
    scored = _fused(_request(session=0, name_match=0, time=0), question)
    essay = {"id": uuid.uuid4(), "session_id": s, "seq": 2, "name": "Bob", "occurred_at": WHEN}
    essay["content"] = " ".join(["risotto"] * 500)  # counted as LONG_TURN words
    fusion.answers(scored, [{**essay, "question_id": question.row["id"]}], 0.4)
    fusion.by_length(scored, 0.1)
    parts = {hit.row["id"]: p for _, hit, p in scored}
    middle = (4 + fusion.LONG_TURN) / 2  # the median of the two: the reply that joined counts
    assert parts[essay["id"]]["length"] == pytest.approx(0.1 * math.log((1 + fusion.LONG_TURN) / (1 + middle)))
    assert parts[question.row["id"]]["length"] == pytest.approx(0.1 * math.log(5 / (1 + middle)))


def test_a_reply_the_lists_rank_at_least_as_high_as_its_question_gains_nothing() -> None:
    s = uuid.uuid4()
    question = _message(s, 1, vector_rank=3)  # "How are you finding it?": among the hits, matched weakly
    answer = _message(s, 2, vector_rank=1)  # the lists already rank the answer higher
    level = _message(s, 4, vector_rank=2)
    after_level = _message(s, 5, vector_rank=2)  # ranked exactly as high as its question: no gain either
    scored = _fused(_request(session=0, name_match=0, time=0), question, answer, level, after_level)
    before = {hit.row["id"]: final for final, hit, _ in scored}
    fusion.answers(
        scored,
        [{**answer.row, "question_id": question.row["id"]}, {**after_level.row, "question_id": level.row["id"]}],
        0.4,
    )
    assert {hit.row["id"]: final for final, hit, _ in scored} == before
    assert all("reply" not in parts for _, _, parts in scored)

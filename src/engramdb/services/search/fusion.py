"""Fusion of the retrievers' lists into one ranking (services/search/hybrid.py): reciprocal rank fusion,
scaled by the recency, importance and graph factors; then the evidence that is not a list (the speaker
the query names, the time it names, the session that holds the strongest hits, the question a turn
answers, the turn's length against its peers) added to it.

Those signals are added, not multiplied: a turn that no retriever ranks high but that the query's
speaker said, in the session the best hits come from, is evidence in its own right; as a factor it could
only reorder what the lists already found. Each is counted in units of one list's first place
(``1 / (rrf_k + 1)``), so a weight means the same whatever ``rrf_k`` is (decision 0002, "Additive
signals")."""

from __future__ import annotations

import math
import re
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict

from engramdb.schemas.search import SearchRequest
from engramdb.services.memory import decay
from engramdb.services.search import dates, retrievers
from engramdb.services.search import graph as search_graph


class Parts(TypedDict, total=False):
    """The parts of a candidate's score: ScoreExplanation's fields (keys checked by mypy), made into one
    only for the results returned with ``explain`` (a pydantic object per candidate cost more)."""

    vector_rank: int | None
    vector_similarity: float | None
    neighbor_similarity: float | None
    vector_method: str | None
    keyword_rank: int | None
    keyword_score: float | None
    memory_rank: int | None
    rrf: float
    recency: float | None
    importance: float | None
    decay: float | None
    name_match: bool | None
    session: float | None
    reply: float | None
    time_match: bool | None
    length: float | None
    graph_match: bool | None
    final: float


Scored = tuple[float, retrievers.Hit, Parts]  # a candidate's fused score, the hit, and its parts
SESSION_POOL = 30  # how many of the best fused hits vote for their session
LONG_TURN = 60  # words: a turn is counted up to this length (longer ones say no more; bounds the count's cost)


def first_place(req: SearchRequest) -> float:
    """One list's first place, ``1 / (rrf_k + 1)``: the unit the added signals' weights are counted in."""
    return 1 / (req.rrf_k + 1)


def _session_coherence(scored: list[Scored], gain: float) -> None:
    """Messages in the sessions that hold most of the strongest hits rise: a conversation that answers
    the query usually answers it in several turns. Each message gains ``gain × share``, where ``share``
    is its session's part of the top-30 fused score relative to the best session's; so does a memory
    drawn from a session (it says what the session said). A hit with no session (a memory written
    directly, a fact, a chunk) counts as in the best session: the signal orders the turns and what was
    drawn from them, and does not push down what has no session to vote for."""
    mass: dict[uuid.UUID, float] = defaultdict(float)
    for final, hit, _ in sorted(scored, key=lambda s: -s[0])[:SESSION_POOL]:
        if hit.kind == "message":
            mass[hit.row["session_id"]] += final
    best = max(mass.values(), default=0.0)
    if best <= 0:  # no message among the strongest hits, or every list weighted 0
        return
    for index, (final, hit, explanation) in enumerate(scored):
        session = hit.row.get("session_id") if hit.kind in ("message", "memory") else None
        share = explanation["session"] = 1.0 if session is None else mass.get(session, 0.0) / best
        explanation["final"] = final + gain * share
        scored[index] = (explanation["final"], hit, explanation)


def _names_in(text: str, name: str) -> bool:
    """Whether ``text`` names this speaker (whole words, any case)."""
    return re.search(rf"(?<!\w){re.escape(name.lower())}(?!\w)", text.lower()) is not None


def _named_speakers(query: str, hits: Iterable[retrievers.Hit]) -> set[str]:
    """The speakers of the candidate messages that the query names: questions about a person are mostly
    answered by what that person said, or by a memory that names them."""
    speakers = {hit.row["name"] for hit in hits if hit.kind == "message" and hit.row.get("name")}
    return {speaker for speaker in speakers if _names_in(query, speaker)}


def _recency(hit: retrievers.Hit, now: datetime, half_life_days: float) -> float:
    """``2^(−age/half-life)``, the age counted from when the hit happened in the world (event time), not
    from when Engram stored it, so an imported history is not all new: a message's ``occurred_at``; a
    memory's ``occurred_at``, else when it was last said (``said_at``); a fact's ``valid_from``, else when
    it was recorded, and 0 once it no longer holds (``valid_until`` passed: history, not current); for
    anything else ``created_at``."""
    row = hit.row
    if hit.kind == "fact":
        if row.get("valid_until") is not None and row["valid_until"] <= now:
            return 0.0
        when = row.get("valid_from") or row["created_at"]
    else:
        when = row.get("occurred_at") or row.get("said_at") or row["created_at"]
    age_days = max(0.0, (now - when).total_seconds() / 86_400)
    return math.exp(-math.log(2) * age_days / half_life_days)


def fuse(
    req: SearchRequest,
    hits: dict[tuple[str, uuid.UUID], retrievers.Hit],
    linked: set[tuple[str, uuid.UUID]] | None,
    half_lives: Mapping[str, float],
) -> list[Scored]:
    """Reciprocal rank fusion scaled by the recency, importance and graph factors, plus the speaker, time
    and session signals; best first. ``linked``: the hits tied to an entity the query names (None: the
    graph boost did not run). A memory's importance is its effective one: faded by its type's
    ``half_lives`` since it was last used."""
    now = datetime.now(UTC)
    w = req.weights
    first = first_place(req)
    when = dates.window(req.query, now) if w.time else None
    scored: list[Scored] = []
    named_speakers = _named_speakers(req.query, hits.values()) if w.name_match else set()
    for hit in hits.values():
        rrf = sum(
            weight / (req.rrf_k + rank)
            for rank, weight in (
                (hit.vector_rank, w.vector),
                (hit.keyword_rank, w.keyword),
                (hit.memory_rank, w.memory),
            )
            if rank is not None
        )
        factor, added = 1.0, 0.0
        recency = importance = faded = None
        named = None
        if w.name_match and hit.kind == "message" and hit.row.get("name"):
            named = hit.row["name"] in named_speakers
        elif w.name_match and hit.kind == "memory" and named_speakers:
            named = any(_names_in(hit.row["content"], speaker) for speaker in named_speakers)
        added += w.name_match * first if named else 0.0
        if w.recency:
            recency = _recency(hit, now, w.recency_half_life_days)
            factor += w.recency * recency
        if w.importance and hit.kind == "memory":
            faded = decay.factor(hit.row, now, half_lives)
            importance = float(hit.row["importance"]) * faded
            factor += w.importance * (2 * importance - 1)
        timely = None
        if when is not None and hit.kind in ("message", "memory") and hit.row.get("occurred_at") is not None:
            timely = when[0] <= hit.row["occurred_at"] < when[1]
            added += w.time * first if timely else 0.0
        graph = None
        if linked is not None and hit.kind in search_graph.LINKED:
            graph = (hit.kind, hit.row["id"]) in linked
            factor += w.graph if graph else 0.0
        final = rrf * max(factor, 0.0) + added
        explanation: Parts = {
            "vector_rank": hit.vector_rank,
            "vector_similarity": hit.vector_similarity,
            "vector_method": hit.vector_method,
            "neighbor_similarity": hit.neighbor_similarity,
            "name_match": named,
            "keyword_rank": hit.keyword_rank,
            "keyword_score": hit.keyword_score,
            "memory_rank": hit.memory_rank,
            "rrf": rrf,
            "recency": recency,
            "importance": importance,
            "decay": faded,
            "graph_match": graph,
            "time_match": timely,
            "final": final,
        }
        scored.append((final, hit, explanation))
    if w.session and any(hit.kind == "message" for _, hit, _ in scored):
        _session_coherence(scored, w.session * first)
    scored.sort(key=lambda s: (-s[0], s[1].row["id"]))
    return scored


def answers(scored: list[Scored], replies: list[dict[str, Any]], weight: float) -> None:
    """Each turn that follows a question among the best hits gains ``weight`` × the question's score (read
    before any gain, so a chain of questions does not compound), when the retrievers' lists rank the
    question above the turn itself (a higher ``rrf``): the signal carries a question's match to the answer
    the query did not match as well; an answer the lists already rank at least as high has that evidence
    of its own, and a question that matches the query less than its answer says nothing more about it (in a
    short conversation every question is among the hits, and its reply would gain whatever was asked). A
    reply that no retriever found joins the hits. Sorts ``scored`` again."""
    place = {(hit.kind, hit.row["id"]): index for index, (_, hit, _) in enumerate(scored)}
    gains: dict[uuid.UUID, float] = {}
    for row in replies:
        asked_final, _, asked = scored[place["message", row.pop("question_id")]]
        found = place.get(("message", row["id"]))
        if asked["rrf"] > (0.0 if found is None else scored[found][2]["rrf"]):
            gains[row["id"]] = weight * asked_final
    for row in replies:
        if row["id"] not in gains:
            continue
        index = place.get(("message", row["id"]))
        if index is None:
            place["message", row["id"]] = index = len(scored)
            scored.append((0.0, retrievers.Hit("message", row), {"rrf": 0.0, "final": 0.0}))
        final, hit, explanation = scored[index]
        gain = explanation["reply"] = gains[row["id"]]
        explanation["final"] = final + gain
        scored[index] = (explanation["final"], hit, explanation)
    scored.sort(key=lambda s: (-s[0], s[1].row["id"]))


def by_length(scored: list[Scored], gain: float) -> None:
    """Each message gains ``gain × ln((1 + its words) / (1 + the median candidate message's words))``, words
    counted up to ``LONG_TURN``: a turn longer than the others found for this query usually says more, and
    a short one ("Thanks!", "Wow, cool!") rarely answers anything, however close its few words come to the
    query's. The median only shifts every message alike, so messages keep their order among themselves
    whatever the candidates were; centred on it, the signal does not push messages as a whole above or
    below the other kinds. Run last (after the replies joined), so every message is counted; sorts
    ``scored`` again. Words are counted between spaces: for text written without them (Chinese, Japanese)
    the signal stays near zero."""
    words = {
        id(hit): min(len(hit.row["content"].split(None, LONG_TURN)), LONG_TURN)
        for _, hit, _ in scored
        if hit.kind == "message"
    }
    if not words:
        return
    middle = statistics.median(words.values())
    for index, (final, hit, explanation) in enumerate(scored):
        if id(hit) in words:
            change = explanation["length"] = gain * math.log((1 + words[id(hit)]) / (1 + middle))
            explanation["final"] = final + change
            scored[index] = (explanation["final"], hit, explanation)
    scored.sort(key=lambda s: (-s[0], s[1].row["id"]))

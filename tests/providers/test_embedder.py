from __future__ import annotations

import asyncio
import json
import math

import httpx
import pytest

from engramdb.config import Settings
from engramdb.errors import ConfigurationError, ServiceUnavailable
from engramdb.providers import minilm
from engramdb.providers.embedder import CachedEmbedder, HashEmbedder, create_embedder, embed_one
from engramdb.providers.openai_embedder import OpenAIEmbedder


def _norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


async def test_hash_embedder_is_deterministic_and_unit_length() -> None:
    e = HashEmbedder(64)
    a, b, c = await e.embed_batch(["red apple", "red apple", ""])
    assert a == b and len(a) == 64
    assert _norm(a) == pytest.approx(1.0) and _norm(c) == pytest.approx(1.0)


async def test_cache_embeds_each_text_once() -> None:
    calls: list[list[str]] = []

    class Counting(HashEmbedder):
        async def embed_batch(self, texts, *, kind="passage"):  # type: ignore[no-untyped-def]
            calls.append(list(texts))
            return await super().embed_batch(texts, kind=kind)

    cached = CachedEmbedder(Counting(16), size=2)
    first = await cached.embed_batch(["a", "b", "a"], kind="query")
    assert calls == [["a", "b"]] and first[0] == first[2]
    await cached.embed_batch(["b"], kind="query")
    assert len(calls) == 1
    again = await cached.embed_batch(["c", "d", "e", "a"], kind="query")  # more new texts than it holds
    assert again[3] == first[0] and len(calls) == 2
    await cached.embed_batch(["p", "p"], kind="passage")  # passages: deduplicated, not kept
    await cached.embed_batch(["p"], kind="passage")
    assert calls[-2:] == [["p"], ["p"]]
    assert cached.model == "hash-16" and cached.dimensions == 16


async def test_real_model_ranks_meaning() -> None:
    e = minilm.MiniLMEmbedder()
    q = await embed_one(e, "a pet dog")
    dog, tax = await e.embed_batch(["I adopted a puppy", "The tax return is due in April"])
    dot = lambda x, y: sum(a * b for a, b in zip(x, y, strict=True))  # noqa: E731
    assert dot(q, dog) > dot(q, tax) + 0.2
    assert len(q) == minilm.DIMENSIONS and _norm(q) == pytest.approx(1.0, abs=1e-4)
    assert await e.embed_batch([]) == []


def test_tampered_weights_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm, "MODEL_SHA256", "0" * 64)
    with pytest.raises(ConfigurationError, match="sha256"):
        minilm.MiniLMEmbedder()._load()


def _server(handler):  # type: ignore[no-untyped-def]
    return httpx.MockTransport(handler)


async def test_openai_compatible_embeddings() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append({"auth": request.headers.get("authorization"), "path": request.url.path, **body})
        data = [{"index": i, "embedding": [3.0, 4.0]} for i in reversed(range(len(body["input"])))]
        return httpx.Response(200, json={"data": data})

    e = OpenAIEmbedder(
        base_url="http://emb.test/v1/", model="m", dimensions=2, api_key="k", batch_size=2, transport=_server(handler)
    )
    vectors = await e.embed_batch(["a", "b", "c"])
    assert vectors == [[0.6, 0.8]] * 3
    assert [s["input"] for s in seen] == [["a", "b"], ["c"]]
    assert seen[0]["auth"] == "Bearer k" and seen[0]["path"] == "/v1/embeddings" and seen[0]["model"] == "m"


async def test_openai_errors_are_clear() -> None:
    failing = OpenAIEmbedder(
        base_url="http://emb.test",
        model="m",
        dimensions=2,
        transport=_server(lambda r: httpx.Response(500, text="boom")),
    )
    with pytest.raises(ServiceUnavailable, match="500"):
        await failing.embed_batch(["a"])
    wrong = OpenAIEmbedder(
        base_url="http://emb.test",
        model="m",
        dimensions=3,
        transport=_server(lambda r: httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0, 0.0]}]})),
    )
    with pytest.raises(ConfigurationError, match="dimensions"):
        await wrong.embed_batch(["a"])

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(ServiceUnavailable):
        await OpenAIEmbedder(base_url="http://emb.test", model="m", dimensions=2, transport=_server(down)).embed_batch(
            ["a"]
        )


def test_embedder_selection() -> None:
    assert create_embedder(Settings(embedder="hash", embedder_dimensions=8)).dimensions == 8
    assert create_embedder(Settings()).model == minilm.MODEL_ID
    with pytest.raises(ConfigurationError, match="unknown"):
        create_embedder(Settings(embedder="nope"))
    with pytest.raises(ConfigurationError, match="ENGRAM_EMBEDDER_URL"):
        create_embedder(Settings(embedder="openai"))
    made = create_embedder(
        Settings(embedder="openai", embedder_url="http://x/v1", embedder_model="m", embedder_dimensions=4)
    )
    assert made.model == "m" and made.dimensions == 4
    with pytest.raises(ValueError, match="placeholder"):
        Settings(embedder_api_key="change-me")


async def test_openai_replies_that_cannot_be_used_are_503() -> None:
    def reply(body: object) -> OpenAIEmbedder:
        return OpenAIEmbedder(
            base_url="http://emb.test",
            model="m",
            dimensions=2,
            transport=_server(lambda r: httpx.Response(200, json=body)),
        )

    for body in (
        {"data": [{"index": 0, "embedding": [0.0, 0.0]}]},
        {"data": []},
        {"nothing": 1},
        {"data": [{"index": 0, "embedding": ["x", 1]}]},
    ):
        with pytest.raises(ServiceUnavailable):
            await reply(body).embed_batch(["a"])
    not_json = OpenAIEmbedder(
        base_url="http://emb.test",
        model="m",
        dimensions=2,
        transport=_server(lambda r: httpx.Response(200, text="<html>")),
    )
    with pytest.raises(ServiceUnavailable):
        await not_json.embed_batch(["a"])


async def test_a_query_does_not_wait_behind_a_passage_batch() -> None:
    model = minilm.MiniLMEmbedder()
    await model.warm()
    bulk = asyncio.ensure_future(model.embed_batch([f"passage number {i} about gardens" for i in range(3000)]))
    await asyncio.sleep(0.05)  # the batch is running on the passage thread
    (vector,) = await model.embed_batch(["where is the garden?"], kind="query")
    assert len(vector) == model.dimensions
    assert not bulk.done()  # the query finished while the batch was still being embedded
    assert len(await bulk) == 3000

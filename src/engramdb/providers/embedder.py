"""Embedders: turn text into unit vectors. One required method, ``embed_batch``.

Built-ins register themselves in ``EMBEDDERS`` the same way a third-party embedder would
(``register_embedder``). Every vector Engram stores records the ``model`` of the embedder that made it;
vectors of different models are never compared.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable, Sequence

from engramdb import metrics
from engramdb.config import Settings
from engramdb.errors import ConfigurationError, Overloaded
from engramdb.providers.embedding import Embedder, Kind, embed_one

__all__ = ["CachedEmbedder", "Embedder", "HashEmbedder", "Kind", "create_embedder", "embed_one", "register_embedder"]

EmbedderFactory = Callable[[Settings], Embedder]
EMBEDDERS: dict[str, EmbedderFactory] = {}


def register_embedder(name: str, factory: EmbedderFactory) -> None:
    EMBEDDERS[name] = factory


def create_embedder(settings: Settings) -> Embedder:
    """The embedder ``ENGRAM_EMBEDDER`` names, built once per process."""
    factory = EMBEDDERS.get(settings.embedder)
    if factory is None:
        raise ConfigurationError(
            f"unknown ENGRAM_EMBEDDER '{settings.embedder}'; choose one of {', '.join(sorted(EMBEDDERS))}"
        )
    return factory(settings)


class HashEmbedder:
    """Deterministic bag-of-words hashing vectors: no model, for tests that do not measure retrieval."""

    def __init__(self, dimensions: int = 384) -> None:
        self.dimensions = dimensions
        self.model = f"hash-{dimensions}"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dimensions
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "big") % self.dimensions
            vec[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        if norm == 1.0 and not any(vec):
            vec[0] = 1.0
        return [v / norm for v in vec]

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        return [self._vector(t) for t in texts]


def _hash_factory(settings: Settings) -> Embedder:
    return HashEmbedder(settings.embedder_dimensions or 384)


def _minilm_factory(settings: Settings) -> Embedder:
    from engramdb.providers.minilm import MiniLMEmbedder

    return MiniLMEmbedder(batch_size=settings.embed_batch_size, threads=settings.embed_threads)


def _openai_factory(settings: Settings) -> Embedder:
    from engramdb.providers.openai_embedder import OpenAIEmbedder

    return OpenAIEmbedder.from_settings(settings)


register_embedder("minilm", _minilm_factory)
register_embedder("hash", _hash_factory)
register_embedder("openai", _openai_factory)


class CachedEmbedder:
    """Wraps an embedder: identical texts in a batch are embedded once, and recent *query* vectors are
    reused (passages are written once and rarely seen again, so caching them would only cost memory).

    It also bounds the work waiting for the model. When ``shed()`` says the caller is an API request (see
    ``storage.database.in_request``), its texts count as waiting until embedded, and a request that would
    take the count over ``max_waiting`` is refused at once (:class:`~engramdb.errors.Overloaded`, a 503 with
    ``Retry-After``) rather than queued behind minutes of work; a request alone is always let in, however
    many texts it has. Background work (jobs, the backfill) is never refused: it has no client waiting.
    Every call to the model is counted and timed (``engramdb.metrics``)."""

    def __init__(
        self,
        inner: Embedder,
        *,
        size: int = 2_000,
        max_waiting: int | None = None,
        shed: Callable[[], bool] = lambda: False,
    ) -> None:
        self.inner = inner
        self.model = inner.model
        self.dimensions = inner.dimensions
        self._size = size
        self._cache: dict[tuple[str, bytes], list[float]] = {}
        self._max_waiting = max_waiting
        self._shed = shed
        self.waiting = 0  # texts of requests waiting for (or in) the model, in this process

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        keys: list[tuple[str, bytes]] = [(kind, hashlib.sha256(t.encode()).digest()) for t in texts]
        missing: dict[tuple[str, bytes], str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._cache and key not in missing:
                missing[key] = text
        fresh: dict[tuple[str, bytes], list[float]] = {}
        if missing:
            vectors = await self._embed(list(missing.values()), kind)
            fresh = dict(zip(missing, vectors, strict=True))
        result = [fresh[key] if key in fresh else self._cache[key] for key in keys]
        for key, vector in fresh.items() if kind == "query" else ():  # oldest entries make room
            if len(self._cache) >= self._size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = vector
        return result

    async def _embed(self, texts: list[str], kind: Kind) -> list[list[float]]:
        counted = self._max_waiting is not None and self._shed()
        if counted:
            if self.waiting and self.waiting + len(texts) > (self._max_waiting or 0):
                metrics.OVERLOAD.labels("embedder").inc()
                raise Overloaded(
                    f"{self.waiting} texts are waiting to be embedded (ENGRAM_EMBED_QUEUE_TEXTS is "
                    f"{self._max_waiting}); try again shortly"
                )
            self.waiting += len(texts)
            metrics.EMBED_WAITING.inc(len(texts))
        started = time.perf_counter()
        try:
            return await self.inner.embed_batch(texts, kind=kind)
        finally:
            metrics.EMBED_DURATION.labels(kind).observe(time.perf_counter() - started)
            metrics.EMBED_BATCHES.labels(kind).inc()
            metrics.EMBED_TEXTS.labels(kind).inc(len(texts))
            if counted:
                self.waiting -= len(texts)
                metrics.EMBED_WAITING.dec(len(texts))

    async def warm(self) -> None:
        warm = getattr(self.inner, "warm", None)
        if warm is not None:
            await warm()

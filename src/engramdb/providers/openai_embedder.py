"""Any OpenAI-compatible ``/v1/embeddings`` endpoint: OpenAI, Ollama, vLLM, TEI, LiteLLM."""

from __future__ import annotations

import math
from collections.abc import Sequence

import httpx

from engramdb.config import Settings
from engramdb.errors import ConfigurationError, ServiceUnavailable
from engramdb.providers.embedding import Kind


class OpenAIEmbedder:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        dimensions: int,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        self.dimensions = dimensions
        self.batch_size = batch_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIEmbedder:
        if not settings.embedder_url or not settings.embedder_model or not settings.embedder_dimensions:
            raise ConfigurationError(
                "ENGRAM_EMBEDDER=openai needs ENGRAM_EMBEDDER_URL (e.g. http://localhost:11434/v1), "
                "ENGRAM_EMBEDDER_MODEL and ENGRAM_EMBEDDER_DIMENSIONS"
            )
        return cls(
            base_url=settings.embedder_url,
            model=settings.embedder_model,
            dimensions=settings.embedder_dimensions,
            api_key=settings.embedder_api_key,
            batch_size=settings.embed_batch_size,
        )

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            try:
                response = await self._client.post("/embeddings", json={"model": self.model, "input": chunk})
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(f"the embedding service did not answer: {exc}") from exc
            if response.status_code != 200:
                raise ServiceUnavailable(
                    f"the embedding service answered {response.status_code}: {response.text[:200]}"
                )
            try:
                data = sorted(response.json()["data"], key=lambda item: item["index"])
                batch = [[float(x) for x in item["embedding"]] for item in data]
            except (ValueError, KeyError, TypeError) as exc:
                raise ServiceUnavailable(f"the embedding service sent a reply Engram cannot read: {exc}") from exc
            if len(batch) != len(chunk):
                raise ServiceUnavailable(f"the embedding service returned {len(batch)} vectors for {len(chunk)} texts")
            for vector in batch:
                if len(vector) != self.dimensions:
                    raise ConfigurationError(
                        f"the embedding service returned {len(vector)} dimensions; "
                        f"ENGRAM_EMBEDDER_DIMENSIONS says {self.dimensions}"
                    )
                norm = math.sqrt(sum(x * x for x in vector))
                if not math.isfinite(norm) or norm == 0.0:
                    raise ServiceUnavailable("the embedding service returned a zero or non-finite vector")
                vectors.append([x / norm for x in vector])
        return vectors

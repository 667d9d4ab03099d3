"""Which extractor and summarizer a process uses, from its settings (built once, like the embedder)."""

from __future__ import annotations

from dataclasses import dataclass

from engramdb.config import Settings
from engramdb.errors import ConfigurationError
from engramdb.providers.extraction import Extractor, Summarizer
from engramdb.providers.llm import ChatClient, create_llm


@dataclass(frozen=True)
class Intelligence:
    """``extractor`` is None when extraction is off (``ENGRAM_EXTRACTION=off``)."""

    extractor: Extractor | None
    summarizer: Summarizer
    offline: bool
    client: ChatClient | None = None

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def create_intelligence(settings: Settings) -> Intelligence:
    from engramdb.providers.extraction.llm import LLMExtractor, LLMSummarizer
    from engramdb.providers.extraction.offline import OfflineExtractor, OfflineSummarizer

    if settings.extraction == "llm" and settings.llm_base_url is None:
        raise ConfigurationError("ENGRAM_EXTRACTION=llm needs ENGRAM_LLM_BASE_URL and ENGRAM_LLM_MODEL")
    client = create_llm(settings) if settings.extraction in ("auto", "llm") else None
    if client is not None:
        return Intelligence(LLMExtractor(client), LLMSummarizer(client), offline=False, client=client)
    extractor = None if settings.extraction == "off" else OfflineExtractor()
    return Intelligence(extractor, OfflineSummarizer(), offline=True)

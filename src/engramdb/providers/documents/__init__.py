"""Documents: parse an upload into text, cut the text into cited, embeddable chunks (pure functions)."""

from engramdb.providers.documents.chunk import GRAMMARS, Chunk, chunk_document, count_tokens, minilm_tokenizer
from engramdb.providers.documents.cite import Citable, chunk_embedding_text, citation
from engramdb.providers.documents.parse import (
    MAX_DOCUMENT_BYTES,
    PAGE_BREAK,
    ContentType,
    Parsed,
    code_language,
    detect_content_type,
    parse,
)

__all__ = [
    "GRAMMARS",
    "MAX_DOCUMENT_BYTES",
    "PAGE_BREAK",
    "Chunk",
    "Citable",
    "ContentType",
    "Parsed",
    "chunk_document",
    "chunk_embedding_text",
    "citation",
    "code_language",
    "count_tokens",
    "detect_content_type",
    "minilm_tokenizer",
    "parse",
]

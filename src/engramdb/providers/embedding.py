"""What an embedder is: the Protocol every embedder meets, apart from the registry that builds them
(``embedder.py``), so that an embedder's own module can name these types without importing the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

Kind = Literal["query", "passage"]


@runtime_checkable
class Embedder(Protocol):
    """``model`` names the vector space; ``dimensions`` is the vector length."""

    model: str
    dimensions: int

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        """Unit-length vectors for ``texts``, in order. ``kind`` lets asymmetric models treat queries apart."""
        ...


async def embed_one(embedder: Embedder, text: str, *, kind: Kind = "query") -> list[float]:
    (vector,) = await embedder.embed_batch([text], kind=kind)
    return vector

